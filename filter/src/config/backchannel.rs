//! The gateway's OpenID Connect Back-Channel Logout receiver: the path an OP posts logout tokens
//! to (answered by the filter, never forwarded), and its bounds. Which providers' logout tokens it
//! accepts is per provider (`backchannel_logout_audiences`: the client ids the gateway's
//! deployment registered at that OP).

use super::error::{ConfigError, err, validate_path};
use serde::Deserialize;

pub const DEFAULT_BACKCHANNEL_PATH: &str = "/oauth2/backchannel-logout";
/// Logout tokens are a few hundred bytes; a form body above this is refused unread.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024;
/// Signature checks per second per worker: a flood of bogus tokens costs at most this much CPU.
pub const DEFAULT_MAX_VERIFICATIONS_PER_SECOND: u32 = 20;
/// A logout token issued longer ago than this is refused (its `iat`).
pub const DEFAULT_MAX_TOKEN_AGE_SECONDS: u64 = 600;

/// The OpenID Connect Back-Channel Logout receiver: the path OPs post logout tokens to
/// (answered by the filter, never forwarded) and its bounds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawBackchannelLogout {
    /// The receiver's path (starts with `/`, no spaces, no query; not `logout.path`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH_WITHOUT_QUERY), extend("default" = DEFAULT_BACKCHANNEL_PATH)))]
    pub path: Option<String>,
    /// A form body larger than this is refused unread (bytes).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1_024, max = 65_536), extend("default" = DEFAULT_MAX_BODY_BYTES)))]
    pub max_body_bytes: Option<usize>,
    /// Signature checks per second per worker.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 10_000), extend("default" = DEFAULT_MAX_VERIFICATIONS_PER_SECOND)))]
    pub max_verifications_per_second: Option<u32>,
    /// A logout token issued (`iat`) longer ago than this is refused (seconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 10, max = 86_400), extend("default" = DEFAULT_MAX_TOKEN_AGE_SECONDS)))]
    pub max_token_age_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelLogout {
    pub path: String,
    pub max_body_bytes: usize,
    pub max_verifications_per_second: u32,
    pub max_token_age_seconds: u64,
}

impl RawBackchannelLogout {
    pub fn validate(self, at: &str) -> Result<BackchannelLogout, ConfigError> {
        let f = |name: &str| format!("{at}.{name}");
        let path = self
            .path
            .unwrap_or_else(|| DEFAULT_BACKCHANNEL_PATH.to_owned());
        validate_path(&path).map_err(|m| err(f("path"), m))?;
        if path.contains('?') {
            return Err(err(f("path"), "must not contain a query"));
        }
        let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(1_024..=65_536).contains(&max_body_bytes) {
            return Err(err(f("max_body_bytes"), "must be between 1024 and 65536"));
        }
        let max_verifications_per_second = self
            .max_verifications_per_second
            .unwrap_or(DEFAULT_MAX_VERIFICATIONS_PER_SECOND);
        if !(1..=10_000).contains(&max_verifications_per_second) {
            return Err(err(
                f("max_verifications_per_second"),
                "must be between 1 and 10000",
            ));
        }
        let max_token_age_seconds = self
            .max_token_age_seconds
            .unwrap_or(DEFAULT_MAX_TOKEN_AGE_SECONDS);
        if !(10..=86_400).contains(&max_token_age_seconds) {
            return Err(err(
                f("max_token_age_seconds"),
                "must be between 10 and 86400",
            ));
        }
        Ok(BackchannelLogout {
            path,
            max_body_bytes,
            max_verifications_per_second,
            max_token_age_seconds,
        })
    }
}
