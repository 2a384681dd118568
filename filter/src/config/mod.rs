//! Plugin configuration in two steps: the raw JSON shape (`deny_unknown_fields`, so a typo is an
//! error, not a silently ignored option) and the validated [`FilterConfig`] built once in
//! `on_configure`. Every error names the field it is about.

pub mod backchannel;
pub mod discovery;
mod dpop;
mod error;
pub mod hub;
pub mod introspection;
mod provider;
mod raw_layout;
mod reader;
#[cfg(test)]
mod reader_tests;
mod rules;
pub mod services;
mod token_sources;

pub use dpop::{
    DEFAULT_PROOF_LEEWAY_SECONDS, DEFAULT_PROOF_MAX_AGE_SECONDS, DEFAULT_REPLAY_CACHE_ENTRIES,
    DpopMode, DpopSettings, normal_authority, normal_origin,
};
pub use error::ConfigError;
pub(crate) use error::{err, validate_header_name};
pub use provider::{JwksSource, Provider, RawJwksSource, RawProvider};
pub use rules::{Action, DEFAULT_RULE, PathMatch, RawMatch, RawRule, Rule, literal_prefix};
pub use token_sources::{RawTokenSource, TokenSource, default_sources};

use serde::Deserialize;
use services::{
    IdpClient, Logout, RawIdpClient, RawLogout, RawRevocationFeed, RevocationFeed,
    resolve_revocations,
};
use std::collections::BTreeMap;

pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Verified tokens kept per worker when `cache_max_entries` is not set.
pub const DEFAULT_CACHE_MAX_ENTRIES: usize = 4_096;
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;
pub const DEFAULT_JWKS_REFRESH_SECONDS: u64 = 300;
/// Default throttle of early JWKS fetches (a token with an unknown `kid`); capped at the
/// provider's `refresh_seconds` when that is shorter.
pub const DEFAULT_MIN_EARLY_REFRESH_SECONDS: u64 = 10;
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 5_000;

/// The filter's plugin configuration: JSON in Envoy's `configuration` (Wasm) or `filter_config`
/// (dynamic module), YAML in an Istio `WasmPlugin`'s `pluginConfig`. Unknown keys are errors.
/// Numbers are whole numbers (the parser refuses `1.0`); `null` is the same as leaving a key out.
/// Checked by the filter and not expressible here: providers' `issuer`s and `name`s are unique;
/// at most one provider introspects opaque tokens (`introspection.introspect` "opaque").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(
        title = "oauth2-gateway filter configuration",
        extend("allOf" = [
            {"if": {"required": ["revocation_feed"], "properties": {"revocation_feed": {"type": "object"}}},
             "then": {"required": ["idp_client"], "properties": {"idp_client": {"type": "object"}}}},
            {"if": {"required": ["hub"], "properties": {"hub": {"type": "object"}}},
             "then": {"required": ["idp_client"], "properties": {"idp_client": {"type": "object"}}}},
            {"if": {"required": ["logout"], "properties": {"logout": {"type": "object", "required": ["revoke"], "properties": {"revoke": {"type": "object"}}}}},
             "then": {"required": ["idp_client"], "properties": {"idp_client": {"type": "object"}}}},
            {"if": {"required": ["logout"], "properties": {"logout": {"type": "object"}}},
             "then": {"anyOf": [
                 {"properties": {"logout": {"required": ["revoke"], "properties": {"revoke": {"type": "object"}}}}},
                 {"properties": {"providers": {"contains": {"required": ["revoke"], "properties": {"revoke": {"type": "object"}}}}}}
             ]}},
            {"if": {"required": ["providers"], "properties": {"providers": {"contains": {"required": ["revoke"], "properties": {"revoke": {"type": "object"}}}}}},
             "then": {"required": ["logout"], "properties": {"logout": {"type": "object"}}}},
            {"if": {"required": ["backchannel_logout"], "properties": {"backchannel_logout": {"type": "object"}}},
             "then": {"properties": {"providers": {"contains": {"required": ["backchannel_logout_audiences"], "properties": {"backchannel_logout_audiences": {"type": "array", "minItems": 1}}}}}}}
        ])
    )
)]
pub struct RawConfig {
    /// The identity providers whose tokens are accepted (at least one).
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub providers: Vec<RawProvider>,
    /// The realm named in `WWW-Authenticate` challenges: printable text without `"` or `\`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = error::patterns::REALM), extend("default" = "gateway")))]
    pub realm: Option<String>,
    /// The longest token read, in bytes; a longer one is refused.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 256, max = 65_536), extend("default" = DEFAULT_MAX_TOKEN_BYTES)))]
    pub max_token_bytes: Option<usize>,
    /// Upstream header name → claim name: the claims copied into headers of the forwarded request
    /// (inbound headers of these names are always stripped). Header names: lowercase letters,
    /// digits, `-`, `_`, not `authorization`, `host`, `cookie`, `content-length` or
    /// `transfer-encoding`. Absent: the default; `{}` copies none.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend(
        "default" = {"x-auth-sub": "sub", "x-auth-client-id": "client_id", "x-auth-scope": "scope", "x-auth-sid": "sid", "x-auth-issuer": "iss"},
        "propertyNames" = {"pattern": error::patterns::HEADER_NAME, "not": {"enum": ["authorization", "host", "cookie", "content-length", "transfer-encoding"]}},
        "additionalProperties" = {"type": "string", "minLength": 1}
    )))]
    pub claim_headers: Option<BTreeMap<String, String>>,
    /// Separator for array claims copied into a header (no control characters).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = error::patterns::NO_CONTROLS), extend("default" = ",")))]
    pub claim_header_separator: Option<String>,
    /// Per-route rules, the first that matches applies; a request no rule matches requires a
    /// valid token (action "require").
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// How the gateway authenticates to the IDP (revocation feed, RFC 7009 revocation of
    /// `logout.revoke`, the hub). Required by `revocation_feed`, `hub` and `logout.revoke`.
    #[serde(default)]
    pub idp_client: Option<RawIdpClient>,
    /// The IDP's revocation feed, polled once per Envoy (requires `idp_client`).
    #[serde(default)]
    pub revocation_feed: Option<RawRevocationFeed>,
    /// The logout endpoint the gateway answers itself. Requires a revocation endpoint:
    /// `logout.revoke` or some provider's `revoke` (and a provider's `revoke` requires `logout`).
    #[serde(default)]
    pub logout: Option<RawLogout>,
    /// The OpenID Connect Back-Channel Logout receiver (absent: none). Requires a provider with
    /// a non-empty `backchannel_logout_audiences`; its path must differ from `logout.path`.
    #[serde(default)]
    pub backchannel_logout: Option<backchannel::RawBackchannelLogout>,
    /// The revocation hub this gateway reports its revocations to (absent: none; requires
    /// `idp_client`).
    #[serde(default)]
    pub hub: Option<hub::RawHub>,
    /// Introspection answers remembered per Envoy (all workers).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 256, max = 1_048_576), extend("default" = 16_384)))]
    pub introspection_cache_entries: Option<usize>,
    /// Verified tokens remembered per worker (0 disables the cache).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = 1_000_000), extend("default" = DEFAULT_CACHE_MAX_ENTRIES)))]
    pub cache_max_entries: Option<usize>,
    /// DPoP proof `jti`s remembered per Envoy (all workers), to refuse replays.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1_024, max = 16_777_216), extend("default" = DEFAULT_REPLAY_CACHE_ENTRIES)))]
    pub dpop_replay_cache_entries: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct FilterConfig {
    pub providers: Vec<Provider>,
    pub realm: String,
    pub max_token_bytes: usize,
    pub claim_headers: Vec<(String, String)>,
    pub claim_header_separator: String,
    pub rules: Vec<Rule>,
    pub idp_client: Option<IdpClient>,
    pub revocation_feed: Option<RevocationFeed>,
    pub logout: Option<Logout>,
    pub backchannel_logout: Option<backchannel::BackchannelLogout>,
    pub hub: Option<hub::Hub>,
    pub introspection_cache_entries: usize,
    pub cache_max_entries: usize,
    /// Every place any provider reads tokens from.
    pub token_sources: Vec<TokenSource>,
    pub dpop_replay_cache_entries: usize,
    /// What the gateway offers in its challenges (RFC 9449 §7.2): the `Bearer` scheme (some
    /// provider does not require DPoP) and the `DPoP` scheme with its algorithms (some provider
    /// accepts it; `None`: no provider does, and the `DPoP` scheme is not even read).
    pub bearer_offered: bool,
    pub dpop_algs: Option<String>,
}

pub fn default_claim_headers() -> Vec<(String, String)> {
    [
        ("x-auth-sub", "sub"),
        ("x-auth-client-id", "client_id"),
        ("x-auth-scope", "scope"),
        ("x-auth-sid", "sid"),
        ("x-auth-issuer", "iss"),
    ]
    .into_iter()
    .map(|(h, c)| (h.to_owned(), c.to_owned()))
    .collect()
}

impl FilterConfig {
    /// Whether anything can add to the denylist (a feed, a logout, a back-channel logout): only
    /// then does a request look for revocations another worker made.
    pub fn revokes(&self) -> bool {
        self.revocation_feed.is_some() || self.logout.is_some() || self.backchannel_logout.is_some()
    }

    /// Parses and validates plugin configuration bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(err("configuration", "is empty"));
        }
        // serde_json names the unknown/mistyped field and its position; read without the
        // derived visitors (config/reader.rs), with the same errors.
        let fields = reader::read(bytes, &raw_layout::CONFIG)
            .map_err(|e| err("configuration", e.to_string()))?;
        raw_layout::config(fields).validate()
    }
}

impl RawConfig {
    pub fn validate(self) -> Result<FilterConfig, ConfigError> {
        if self.providers.is_empty() {
            return Err(err("providers", "at least one provider is required"));
        }
        let mut providers = Vec::with_capacity(self.providers.len());
        for (i, p) in self.providers.into_iter().enumerate() {
            let provider = p.validate(&format!("providers[{i}]"))?;
            if providers
                .iter()
                .any(|q: &Provider| q.issuer == provider.issuer)
            {
                return Err(err(
                    format!("providers[{i}].issuer"),
                    "is used by another provider",
                ));
            }
            if providers.iter().any(|q: &Provider| q.name == provider.name) {
                return Err(err(
                    format!("providers[{i}].name"),
                    "is used by another provider",
                ));
            }
            providers.push(provider);
        }
        let realm = self.realm.unwrap_or_else(|| "gateway".to_owned());
        if realm.is_empty()
            || realm
                .chars()
                .any(|c| c.is_control() || c == '"' || c == '\\')
        {
            return Err(err(
                "realm",
                "must be non-empty printable text without quotes",
            ));
        }
        let max_token_bytes = self.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
        if !(256..=64 * 1024).contains(&max_token_bytes) {
            return Err(err("max_token_bytes", "must be between 256 and 65536"));
        }
        let claim_headers = match self.claim_headers {
            None => default_claim_headers(),
            Some(map) => {
                let mut out = Vec::with_capacity(map.len());
                for (header, claim) in map {
                    let field = format!("claim_headers.{header}");
                    validate_header_name(&header).map_err(|m| err(&field, m))?;
                    if claim.is_empty() {
                        return Err(err(field, "claim name is empty"));
                    }
                    out.push((header, claim));
                }
                out
            }
        };
        let claim_header_separator = self.claim_header_separator.unwrap_or_else(|| ",".into());
        if claim_header_separator.chars().any(|c| c.is_control()) {
            return Err(err(
                "claim_header_separator",
                "must not contain control characters",
            ));
        }
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.into_iter().enumerate() {
            rules.push(r.validate(&format!("rules[{i}]"), &providers)?);
        }
        let idp_client = self
            .idp_client
            .map(|c| c.validate("idp_client"))
            .transpose()?;
        let revocation_feed = self
            .revocation_feed
            .map(|f| f.validate("revocation_feed"))
            .transpose()?;
        let (logout, top_revoke) = match self.logout.map(|l| l.validate("logout")).transpose()? {
            Some((logout, top)) => (Some(logout), top),
            None => (None, None),
        };
        resolve_revocations(
            &mut providers,
            top_revoke,
            idp_client.as_ref(),
            logout.as_ref(),
        )?;
        let mut token_sources: Vec<TokenSource> = Vec::new();
        for source in providers.iter().flat_map(|p| p.token_sources.iter()) {
            if !token_sources.contains(source) {
                token_sources.push(source.clone());
            }
        }
        let cache_max_entries = self.cache_max_entries.unwrap_or(DEFAULT_CACHE_MAX_ENTRIES);
        if cache_max_entries > 1_000_000 {
            return Err(err("cache_max_entries", "must be at most 1000000"));
        }
        let dpop_replay_cache_entries = self
            .dpop_replay_cache_entries
            .unwrap_or(DEFAULT_REPLAY_CACHE_ENTRIES);
        if !(1_024..=16_777_216).contains(&dpop_replay_cache_entries) {
            return Err(err(
                "dpop_replay_cache_entries",
                "must be between 1024 and 16777216",
            ));
        }
        let bearer_offered = providers.iter().any(|p| p.dpop.mode != DpopMode::Required);
        let dpop_algs = providers.iter().any(|p| p.dpop.offered()).then(|| {
            crate::jose::algorithm::Algorithm::ALL
                .iter()
                .filter(|a| {
                    providers
                        .iter()
                        .any(|p| p.dpop.offered() && p.dpop.algorithms.contains(a))
                })
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        });
        if idp_client.is_none() && revocation_feed.is_some() {
            return Err(err("idp_client", "is required by revocation_feed"));
        }
        let backchannel_logout = self
            .backchannel_logout
            .map(|b| b.validate("backchannel_logout"))
            .transpose()?;
        if let Some(b) = &backchannel_logout {
            if !providers
                .iter()
                .any(|p| !p.backchannel_audiences.is_empty())
            {
                return Err(err(
                    "backchannel_logout",
                    "no provider accepts logout tokens: set backchannel_logout_audiences on one",
                ));
            }
            if logout.as_ref().is_some_and(|l| l.path == b.path) {
                return Err(err("backchannel_logout.path", "is the logout path"));
            }
        }
        let hub = self
            .hub
            .map(|h| h.validate("hub", &providers))
            .transpose()?;
        if hub.is_some() && idp_client.is_none() {
            return Err(err("idp_client", "is required by hub"));
        }
        let introspection_cache_entries = self.introspection_cache_entries.unwrap_or(16_384);
        if !(256..=1_048_576).contains(&introspection_cache_entries) {
            return Err(err(
                "introspection_cache_entries",
                "must be between 256 and 1048576",
            ));
        }
        if providers
            .iter()
            .filter(|p| {
                p.introspection
                    .as_ref()
                    .is_some_and(|i| i.mode == introspection::IntrospectMode::Opaque)
            })
            .count()
            > 1
        {
            return Err(err(
                "providers",
                "at most one provider may introspect opaque tokens (an opaque token names no issuer)",
            ));
        }
        Ok(FilterConfig {
            providers,
            realm,
            max_token_bytes,
            claim_headers,
            claim_header_separator,
            rules,
            idp_client,
            revocation_feed,
            logout,
            backchannel_logout,
            hub,
            introspection_cache_entries,
            cache_max_entries,
            token_sources,
            dpop_replay_cache_entries,
            bearer_offered,
            dpop_algs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// One provider whose `jwks` block is `jwks`.
    fn with_jwks(jwks: Value) -> Result<FilterConfig, ConfigError> {
        let config = json!({"providers": [{
            "issuer": "http://127.0.0.1:9000", "audiences": ["demo-api"],
            "algorithms": ["ES256"], "jwks": jwks
        }]});
        FilterConfig::from_json(config.to_string().as_bytes())
    }

    fn jwks_of(config: &FilterConfig) -> &JwksSource {
        config.providers[0].jwks.as_ref().unwrap()
    }

    #[test]
    fn early_refresh_gap_defaults_to_10_s_capped_at_the_refresh_period() {
        let config = with_jwks(json!({"cluster": "idp", "path": "/jwks"})).unwrap();
        assert_eq!(jwks_of(&config).refresh_seconds, 300);
        assert_eq!(jwks_of(&config).min_early_refresh_seconds, 10);
        let config =
            with_jwks(json!({"cluster": "idp", "path": "/jwks", "refresh_seconds": 4})).unwrap();
        assert_eq!(jwks_of(&config).min_early_refresh_seconds, 4);
    }

    #[test]
    fn early_refresh_gap_is_configurable_from_1_s_to_the_refresh_period() {
        for (refresh, gap) in [(60, 1), (60, 2), (60, 60), (1, 1), (86_400, 3_600)] {
            let config = with_jwks(json!({"cluster": "idp", "path": "/jwks",
                "refresh_seconds": refresh, "min_early_refresh_seconds": gap}))
            .unwrap();
            assert_eq!(jwks_of(&config).min_early_refresh_seconds, gap);
        }
    }

    #[test]
    fn an_early_refresh_gap_out_of_range_is_refused() {
        for (refresh, gap) in [(60, json!(0)), (60, json!(61)), (1, json!(2))] {
            let error = with_jwks(json!({"cluster": "idp", "path": "/jwks",
                "refresh_seconds": refresh, "min_early_refresh_seconds": gap}))
            .unwrap_err();
            assert_eq!(
                error,
                err(
                    "providers[0].jwks.min_early_refresh_seconds",
                    "must be between 1 and refresh_seconds"
                ),
                "refresh {refresh}, gap {gap}"
            );
        }
        // refresh_seconds is checked first, with its own message.
        for refresh in [0, 86_401] {
            let error =
                with_jwks(json!({"cluster": "idp", "path": "/jwks", "refresh_seconds": refresh}))
                    .unwrap_err();
            assert_eq!(
                error,
                err(
                    "providers[0].jwks.refresh_seconds",
                    "must be between 1 and 86400"
                )
            );
        }
        // Not a whole number of seconds: refused by the parser.
        for gap in [json!(-1), json!(1.5), json!("2s")] {
            let error = with_jwks(
                json!({"cluster": "idp", "path": "/jwks", "min_early_refresh_seconds": gap}),
            )
            .unwrap_err();
            assert_eq!(error.field, "configuration");
            assert!(
                error.message.contains("invalid"),
                "{gap}: {}",
                error.message
            );
        }
    }

    fn with_feed(feed: Value) -> Result<FilterConfig, ConfigError> {
        let config = json!({
            "providers": [{"issuer": "http://127.0.0.1:9000", "audiences": ["demo-api"],
                           "algorithms": ["ES256"], "jwks": {"cluster": "idp", "path": "/jwks"}}],
            "idp_client": {"client_id": "gateway", "client_secret": "gateway-secret-0123456789"},
            "revocation_feed": feed
        });
        FilterConfig::from_json(config.to_string().as_bytes())
    }

    #[test]
    fn the_initial_feed_sync_is_required_unless_turned_off() {
        let required = |feed: Value| {
            with_feed(feed).map(|c| c.revocation_feed.map(|f| f.require_initial_sync))
        };
        let base = json!({"cluster": "idp", "path": "/oauth2/revocations"});
        assert_eq!(required(base.clone()), Ok(Some(true)), "secure by default");
        let mut off = base.clone();
        off["require_initial_sync"] = json!(false);
        assert_eq!(required(off), Ok(Some(false)));
        for bad in [json!("false"), json!(0), json!({})] {
            let mut feed = base.clone();
            feed["require_initial_sync"] = bad.clone();
            let error = with_feed(feed).unwrap_err();
            assert_eq!(error.field, "configuration", "{bad}");
            assert!(
                error.message.contains("invalid"),
                "{bad}: {}",
                error.message
            );
        }
        // Without a feed there is nothing to wait for.
        let none = FilterConfig::from_json(
            br#"{"providers": [{"issuer": "http://127.0.0.1:9000", "audiences": ["a"],
                 "algorithms": ["ES256"], "jwks": {"cluster": "idp", "path": "/jwks"}}]}"#,
        );
        assert_eq!(none.map(|c| c.revocation_feed), Ok(None));
    }
}
