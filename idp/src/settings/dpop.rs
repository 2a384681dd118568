//! The `[dpop]` section (RFC 9449): how old a proof may be, and the server nonce.

use super::{SettingsError, err};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDpop {
    /// A proof's `iat` may be at most this many seconds old (1..300, default 60).
    pub proof_max_age_seconds: Option<u64>,
    /// ... and at most this many seconds in the future (0..60, default 5): clock skew.
    pub clock_skew_seconds: Option<u64>,
    /// Every proof must carry a server nonce (`DPoP-Nonce`, RFC 9449 §8). Default false.
    pub require_nonce: Option<bool>,
    /// How long one nonce is handed out (30..3600, default 300); it is accepted for one more
    /// such period after that.
    pub nonce_lifetime_seconds: Option<u64>,
}

/// DPoP proof checks, the same for the token and userinfo endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopPolicy {
    pub proof_max_age_seconds: u64,
    pub clock_skew_seconds: u64,
    pub require_nonce: bool,
    pub nonce_lifetime_seconds: u64,
}

impl Default for DpopPolicy {
    fn default() -> Self {
        DpopPolicy {
            proof_max_age_seconds: 60,
            clock_skew_seconds: 5,
            require_nonce: false,
            nonce_lifetime_seconds: 300,
        }
    }
}

impl RawDpop {
    pub(super) fn validate(self) -> Result<DpopPolicy, SettingsError> {
        let d = DpopPolicy::default();
        let policy = DpopPolicy {
            proof_max_age_seconds: self
                .proof_max_age_seconds
                .unwrap_or(d.proof_max_age_seconds),
            clock_skew_seconds: self.clock_skew_seconds.unwrap_or(d.clock_skew_seconds),
            require_nonce: self.require_nonce.unwrap_or(d.require_nonce),
            nonce_lifetime_seconds: self
                .nonce_lifetime_seconds
                .unwrap_or(d.nonce_lifetime_seconds),
        };
        if !(1..=300).contains(&policy.proof_max_age_seconds) {
            return Err(err(
                "dpop.proof_max_age_seconds",
                "must be between 1 and 300",
            ));
        }
        if policy.clock_skew_seconds > 60 {
            return Err(err("dpop.clock_skew_seconds", "must be between 0 and 60"));
        }
        if !(30..=3600).contains(&policy.nonce_lifetime_seconds) {
            return Err(err(
                "dpop.nonce_lifetime_seconds",
                "must be between 30 and 3600",
            ));
        }
        Ok(policy)
    }
}
