//! A provider's token introspection (RFC 7662): where the gateway asks whether a token is active,
//! as which confidential client, for which tokens, and how long an answer is kept.

use super::error::{ConfigError, err};
use super::services::{Callout, IdpClient, RawIdpClient, RawOptionalCallout, optional_endpoint};
use serde::Deserialize;

/// The longest a positive answer is kept when the token's `exp` is later (seconds).
pub const DEFAULT_CACHE_SECONDS: u64 = 30;
/// How long an "inactive" answer is kept (seconds).
pub const DEFAULT_NEGATIVE_CACHE_SECONDS: u64 = 5;

/// Which of the provider's tokens are introspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum IntrospectMode {
    /// Tokens that are not a JWS (opaque tokens); the provider's JWTs are validated locally.
    Opaque,
    /// Every token of the provider, JWTs too (after their local validation): for providers whose
    /// revocations must be seen at once.
    Always,
}

/// The provider's introspection endpoint (RFC 7662), the gateway's client there, which tokens
/// are introspected and how long answers are kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("dependencies" = {"cluster": ["path"], "path": ["cluster"],
                                      "authority": ["cluster"], "timeout_ms": ["cluster"]}))
)]
pub struct RawIntrospection {
    /// The Envoy cluster it is reached through. With `path`; both may be left out when the
    /// provider has `discovery`: its document's `introspection_endpoint` is used then.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub cluster: Option<String>,
    /// The request path (starts with `/`, no spaces). With `cluster`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH)))]
    pub path: Option<String>,
    /// The `:authority` of the request (host[:port], no spaces); default: the cluster name.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::NO_SPACES)))]
    pub authority: Option<String>,
    /// Timeout of the call (milliseconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 10, max = 60_000), extend("default" = super::services::DEFAULT_CALL_TIMEOUT_MS)))]
    pub timeout_ms: Option<u64>,
    /// The gateway's client id there (non-empty, no `:`).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::CLIENT_ID)))]
    pub client_id: String,
    /// The client secret (client_secret_basic): at least 16 characters, no control characters
    /// (the filter counts bytes: 16 bytes at least).
    #[cfg_attr(feature = "schema", schemars(length(min = 16), regex(pattern = super::error::patterns::NO_CONTROLS)))]
    pub client_secret: String,
    /// Which tokens are introspected.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("default" = "opaque")))]
    pub introspect: Option<IntrospectMode>,
    /// The longest a positive answer is kept when the token's `exp` is later (seconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 3_600), extend("default" = DEFAULT_CACHE_SECONDS)))]
    pub cache_seconds: Option<u64>,
    /// How long an "inactive" answer is kept (seconds; at most `cache_seconds`, checked by the
    /// filter).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = 3_600), extend("default" = DEFAULT_NEGATIVE_CACHE_SECONDS)))]
    pub negative_cache_seconds: Option<u64>,
    /// Ask for RFC 9701 JWT answers (`application/token-introspection+jwt`), verified with the
    /// provider's keys.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("default" = false)))]
    pub jwt_response: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    /// `None`: the provider's discovered `introspection_endpoint`.
    pub endpoint: Option<Callout>,
    pub client: IdpClient,
    pub mode: IntrospectMode,
    pub cache_seconds: u64,
    pub negative_cache_seconds: u64,
    pub jwt_response: bool,
}

impl RawIntrospection {
    /// `discovered`: the provider has `discovery`, which may give the endpoint instead.
    pub fn validate(self, at: &str, discovered: bool) -> Result<Introspection, ConfigError> {
        let f = |name: &str| format!("{at}.{name}");
        let cache_seconds = self.cache_seconds.unwrap_or(DEFAULT_CACHE_SECONDS);
        if !(1..=3_600).contains(&cache_seconds) {
            return Err(err(f("cache_seconds"), "must be between 1 and 3600"));
        }
        let negative_cache_seconds = self
            .negative_cache_seconds
            .unwrap_or(DEFAULT_NEGATIVE_CACHE_SECONDS);
        if negative_cache_seconds > cache_seconds {
            return Err(err(
                f("negative_cache_seconds"),
                "must be between 0 and cache_seconds",
            ));
        }
        let client = RawIdpClient {
            client_id: self.client_id,
            client_secret: self.client_secret,
        }
        .validate(at)?;
        let endpoint = optional_endpoint(
            RawOptionalCallout {
                cluster: self.cluster,
                path: self.path,
                authority: self.authority,
                timeout_ms: self.timeout_ms,
            },
            discovered,
            at,
        )?;
        Ok(Introspection {
            endpoint,
            client,
            mode: self.introspect.unwrap_or(IntrospectMode::Opaque),
            cache_seconds,
            negative_cache_seconds,
            jwt_response: self.jwt_response.unwrap_or(false),
        })
    }
}
