//! One identity provider: the issuer whose tokens are accepted, its audiences and algorithms,
//! where its keys come from, where its tokens may be, and where logout revokes them.

use super::discovery::{Discovery, RawDiscovery};
use super::dpop::{DpopMode, DpopSettings, RawDpop};
use super::error::{ConfigError, err};
use super::introspection::{IntrospectMode, Introspection, RawIntrospection};
use super::services::RawCallout;
use super::services::{RawProviderRevoke, Revocation};
use super::token_sources::{RawTokenSource, TokenSource, default_sources};
use super::{
    DEFAULT_HTTP_TIMEOUT_MS, DEFAULT_JWKS_REFRESH_SECONDS, DEFAULT_LEEWAY_SECONDS,
    DEFAULT_MIN_EARLY_REFRESH_SECONDS,
};
use crate::jose::algorithm::Algorithm;

/// How long a cut-off is kept when the provider does not say how long its tokens live.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS: u64 = 86_400;
use crate::jose::jwk::KeySet;
use serde::Deserialize;

/// One identity provider: whose tokens are accepted, where its keys come from (`jwks`,
/// `discovery` or `inline_jwks`; none is needed only when `introspection` takes every token as
/// opaque), where its tokens may be, and where logout revokes them.
/// Checked by the filter and not expressible here: DPoP ("allowed" or "required") needs the
/// Authorization Bearer header among `token_sources`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend(
        "anyOf" = [
            {"required": ["jwks"], "properties": {"jwks": {"type": "object"}}},
            {"required": ["discovery"], "properties": {"discovery": {"type": "object"}}},
            {"required": ["inline_jwks"], "properties": {"inline_jwks": {"not": {"type": "null"}}}},
            {"required": ["introspection"], "properties": {"introspection": {"type": "object",
                "properties": {"introspect": {"enum": ["opaque", null]}, "jwt_response": {"enum": [false, null]}}}}}
        ],
        "not" = {"required": ["jwks", "discovery"], "properties": {"jwks": {"type": "object"}, "discovery": {"type": "object"}}},
        "if" = {"not": {"required": ["discovery"], "properties": {"discovery": {"type": "object"}}}},
        "then" = {"properties": {"revoke": {"required": ["cluster", "path"]},
                                 "introspection": {"required": ["cluster", "path"]}}}
    ))
)]
pub struct RawProvider {
    /// How rules name this provider; default: its issuer.
    #[serde(default)]
    pub name: Option<String>,
    /// The `iss` of its tokens, exactly (non-empty, no surrounding spaces). With `discovery`: an
    /// http(s) URL without query or fragment.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::TRIMMED)))]
    pub issuer: String,
    /// Accepted `aud` values (at least one): a token must name one of them.
    #[cfg_attr(feature = "schema", schemars(length(min = 1), inner(length(min = 1))))]
    pub audiences: Vec<String>,
    /// Accepted signature algorithms (at least one); `Ed25519` is the same as `EdDSA`.
    #[cfg_attr(feature = "schema", schemars(length(min = 1), extend("items" = {"enum": ["ES256", "RS256", "PS256", "EdDSA", "Ed25519"]})))]
    pub algorithms: Vec<String>,
    /// Where the provider's JSON Web Key Set is fetched (not together with `discovery`).
    #[serde(default)]
    pub jwks: Option<RawJwksSource>,
    /// Keys and endpoints from the provider's OpenID Connect Discovery document (instead of `jwks`).
    #[serde(default)]
    pub discovery: Option<RawDiscovery>,
    /// A JWKS document given inline (an object, or a string holding one), used instead of or
    /// before a fetched one. The filter checks its keys.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("type" = ["object", "string", "null"])))]
    pub inline_jwks: Option<serde_json::Value>,
    /// Clock skew forgiven on `exp`, `nbf` and `iat` (seconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = 300), extend("default" = DEFAULT_LEEWAY_SECONDS)))]
    pub leeway_seconds: Option<u64>,
    /// The longest lifetime of this provider's access tokens: how long a cut-off of one of its
    /// sessions or subjects is kept (seconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 60, max = 31_536_000), extend("default" = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS)))]
    pub max_token_lifetime_seconds: Option<u64>,
    /// The client ids at this provider whose back-channel logout tokens the gateway accepts
    /// (their `aud`; non-empty, no surrounding spaces); absent or empty: none.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(inner(regex(pattern = super::error::patterns::TRIMMED))))]
    pub backchannel_logout_audiences: Option<Vec<String>>,
    /// Token introspection (RFC 7662) for this provider's opaque tokens, or all of its tokens.
    #[serde(default)]
    pub introspection: Option<RawIntrospection>,
    /// Accepted `typ` header values; an empty list accepts any.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("default" = ["at+jwt", "application/at+jwt"])))]
    pub token_types: Option<Vec<String>>,
    /// Keep the Authorization header on the upstream request.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("default" = true)))]
    pub forward_token: Option<bool>,
    /// Where tokens of this provider may be (at least one source); default: the Authorization
    /// Bearer header only.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1), extend("default" = [{"header": "authorization", "prefix": "Bearer "}])))]
    pub token_sources: Option<Vec<RawTokenSource>>,
    /// Where logout revokes this provider's tokens (RFC 7009), as which client (requires `logout`).
    #[serde(default)]
    pub revoke: Option<RawProviderRevoke>,
    /// DPoP (RFC 9449): "disabled", "allowed" or "required".
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("default" = "disabled")))]
    pub dpop: Option<DpopMode>,
    /// Accepted proof algorithms (at least one); `Ed25519` is the same as `EdDSA`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1), extend(
        "items" = {"enum": ["ES256", "RS256", "PS256", "EdDSA", "Ed25519"]},
        "default" = ["ES256", "RS256", "PS256", "EdDSA"]
    )))]
    pub dpop_algorithms: Option<Vec<String>>,
    /// How long after its `iat` a DPoP proof is accepted (seconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 600), extend("default" = super::DEFAULT_PROOF_MAX_AGE_SECONDS)))]
    pub dpop_proof_max_age_seconds: Option<u64>,
    /// How far a proof's `iat` may lie in the future, and the clock skew forgiven (seconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = 300), extend("default" = super::DEFAULT_PROOF_LEEWAY_SECONDS)))]
    pub dpop_proof_leeway_seconds: Option<u64>,
    /// The public origin (`https://api.example.com`) proofs name in `htu`, when Envoy's
    /// `:scheme`/`:authority` are not what the client used (a TLS-terminating proxy in front):
    /// `http://` or `https://`, a host, an optional port, nothing else.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\\\u0000-\u0020\u007f]+/?$"))
    )]
    pub dpop_htu_base: Option<String>,
}

/// A JSON Web Key Set fetched through an Envoy cluster, periodically and early when a token
/// names an unknown `kid`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawJwksSource {
    /// The Envoy cluster that serves the JWKS.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub cluster: String,
    /// The JWKS path (starts with `/`, no spaces).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH)))]
    pub path: String,
    /// The `:authority` of the request (host[:port], no spaces); default: the cluster name.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::NO_SPACES)))]
    pub authority: Option<String>,
    /// How often the keys are fetched again (seconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86_400), extend("default" = DEFAULT_JWKS_REFRESH_SECONDS)))]
    pub refresh_seconds: Option<u64>,
    /// At least this long after a fetch before a token with an unknown `kid` may trigger an
    /// early one (seconds; at most `refresh_seconds`, which also caps the default).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86_400), extend("default" = DEFAULT_MIN_EARLY_REFRESH_SECONDS)))]
    pub min_early_refresh_seconds: Option<u64>,
    /// Timeout of one fetch (milliseconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 10, max = 60_000), extend("default" = DEFAULT_HTTP_TIMEOUT_MS)))]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub jwks: Option<JwksSource>,
    /// Keys and endpoints discovered (see [`crate::shared_state::discovery`]); never together with `jwks`.
    pub discovery: Option<Discovery>,
    pub inline_keys: Option<KeySet>,
    pub leeway_seconds: u64,
    /// How long a cut-off of this provider's sessions or subjects is kept.
    pub max_token_lifetime_seconds: u64,
    /// Client ids whose back-channel logout tokens are accepted (empty: none).
    pub backchannel_audiences: Vec<String>,
    pub introspection: Option<Introspection>,
    pub token_types: Vec<String>,
    pub forward_token: bool,
    pub token_sources: Vec<TokenSource>,
    /// Logout's revocation endpoint for this provider's tokens (none: logout is refused).
    pub revocation: Option<Revocation>,
    pub dpop: DpopSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSource {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub refresh_seconds: u64,
    pub min_early_refresh_seconds: u64,
    pub timeout_ms: u64,
}

impl RawProvider {
    pub(super) fn validate(self, at: &str) -> Result<Provider, ConfigError> {
        let f = |name: &str| format!("{at}.{name}");
        if self.issuer.trim().is_empty() || self.issuer.trim() != self.issuer {
            return Err(err(
                f("issuer"),
                "must be a non-empty string without surrounding spaces",
            ));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(err(
                f("audiences"),
                "at least one non-empty audience is required (tokens without a matching aud are refused)",
            ));
        }
        if self.algorithms.is_empty() {
            return Err(err(f("algorithms"), "at least one algorithm is required"));
        }
        let mut algorithms = Vec::new();
        for (j, a) in self.algorithms.iter().enumerate() {
            let alg = a.parse::<Algorithm>().map_err(|_| {
                err(
                    format!("{at}.algorithms[{j}]"),
                    format!("unsupported algorithm {a:?} (supported: ES256, RS256, PS256, EdDSA)"),
                )
            })?;
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        let jwks = self.jwks.map(|j| j.validate(&f("jwks"))).transpose()?;
        let inline_keys = match self.inline_jwks {
            None => None,
            Some(v) => {
                let bytes = match &v {
                    serde_json::Value::String(s) => s.as_bytes().to_vec(),
                    other => other.to_string().into_bytes(),
                };
                let parsed =
                    KeySet::parse(&bytes).map_err(|e| err(f("inline_jwks"), e.to_string()))?;
                Some(parsed.set)
            }
        };
        let discovery = match self.discovery {
            Some(_) if jwks.is_some() => {
                return Err(err(f("discovery"), "and jwks cannot both be set: pick one"));
            }
            Some(d) => Some(d.validate(at, &self.issuer)?),
            None => None,
        };
        let has_discovery = discovery.is_some();
        let introspection = self
            .introspection
            .map(|i| i.validate(&f("introspection"), has_discovery))
            .transpose()?;
        let opaque_only = introspection
            .as_ref()
            .is_some_and(|i| i.mode == IntrospectMode::Opaque && !i.jwt_response);
        if jwks.is_none() && discovery.is_none() && inline_keys.is_none() && !opaque_only {
            return Err(err(at, "needs a jwks source, discovery or inline_jwks"));
        }
        let token_sources = match self.token_sources {
            None => default_sources(),
            Some(list) if list.is_empty() => {
                return Err(err(f("token_sources"), "at least one source is required"));
            }
            Some(list) => {
                let mut out: Vec<TokenSource> = Vec::with_capacity(list.len());
                for (j, raw) in list.into_iter().enumerate() {
                    let source = raw.validate(&format!("{at}.token_sources[{j}]"))?;
                    if !out.contains(&source) {
                        out.push(source);
                    }
                }
                out
            }
        };
        let leeway_seconds = self.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS);
        if leeway_seconds > 300 {
            return Err(err(f("leeway_seconds"), "must be at most 300"));
        }
        let max_token_lifetime_seconds = self
            .max_token_lifetime_seconds
            .unwrap_or(DEFAULT_MAX_TOKEN_LIFETIME_SECONDS);
        if !(60..=31_536_000).contains(&max_token_lifetime_seconds) {
            return Err(err(
                f("max_token_lifetime_seconds"),
                "must be between 60 and 31536000",
            ));
        }
        let dpop = RawDpop {
            mode: self.dpop,
            algorithms: self.dpop_algorithms,
            max_age_seconds: self.dpop_proof_max_age_seconds,
            leeway_seconds: self.dpop_proof_leeway_seconds,
            htu_base: self.dpop_htu_base,
        }
        .validate(at)?;
        if dpop.offered() && !token_sources.contains(&TokenSource::AuthorizationBearer) {
            return Err(err(
                f("dpop"),
                "DPoP tokens come in the Authorization header: token_sources must include it",
            ));
        }
        Ok(Provider {
            dpop,
            name: self.name.unwrap_or_else(|| self.issuer.clone()),
            issuer: self.issuer,
            audiences: self.audiences,
            algorithms,
            jwks,
            discovery,
            inline_keys,
            leeway_seconds,
            max_token_lifetime_seconds,
            backchannel_audiences: backchannel_audiences(self.backchannel_logout_audiences, at)?,
            introspection,
            token_types: self
                .token_types
                .unwrap_or_else(|| vec!["at+jwt".into(), "application/at+jwt".into()]),
            forward_token: self.forward_token.unwrap_or(true),
            token_sources,
            revocation: self
                .revoke
                .map(|r| r.validate(&f("revoke"), has_discovery))
                .transpose()?,
        })
    }
}

impl RawJwksSource {
    pub(super) fn validate(self, at: &str) -> Result<JwksSource, ConfigError> {
        let refresh_seconds = self.refresh_seconds.unwrap_or(DEFAULT_JWKS_REFRESH_SECONDS);
        let min_early_refresh_seconds = self
            .min_early_refresh_seconds
            .unwrap_or(DEFAULT_MIN_EARLY_REFRESH_SECONDS.min(refresh_seconds));
        // One error path for both periods (the module's size counts).
        let invalid = if !(1..=86_400).contains(&refresh_seconds) {
            Some(("refresh_seconds", "must be between 1 and 86400"))
        } else if !(1..=refresh_seconds).contains(&min_early_refresh_seconds) {
            Some((
                "min_early_refresh_seconds",
                "must be between 1 and refresh_seconds",
            ))
        } else {
            None
        };
        if let Some((field, message)) = invalid {
            return Err(err(format!("{at}.{field}"), message));
        }
        let endpoint = RawCallout {
            cluster: self.cluster,
            path: self.path,
            authority: self.authority,
            timeout_ms: Some(self.timeout_ms.unwrap_or(DEFAULT_HTTP_TIMEOUT_MS)),
        }
        .validate(at)?;
        Ok(JwksSource {
            cluster: endpoint.cluster,
            path: endpoint.path,
            authority: endpoint.authority,
            refresh_seconds,
            min_early_refresh_seconds,
            timeout_ms: endpoint.timeout_ms,
        })
    }
}

fn backchannel_audiences(raw: Option<Vec<String>>, at: &str) -> Result<Vec<String>, ConfigError> {
    let list = raw.unwrap_or_default();
    if list.iter().any(|a| a.is_empty() || a.trim() != a) {
        return Err(err(
            format!("{at}.backchannel_logout_audiences"),
            "client ids must be non-empty without surrounding spaces",
        ));
    }
    Ok(list)
}
