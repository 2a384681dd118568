//! The `[password_policy]` section: brute-force protection of password logins.

use super::{PasswordPolicy, SettingsError, err};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPasswordPolicy {
    pub max_failures: Option<u32>,
    pub window_seconds: Option<u64>,
    pub lockout_seconds: Option<u64>,
    pub user_delay_seconds: Option<u64>,
    pub max_user_delay_seconds: Option<u64>,
    pub max_concurrent_hashes: Option<usize>,
}

impl RawPasswordPolicy {
    pub fn validate(self) -> Result<PasswordPolicy, SettingsError> {
        let d = PasswordPolicy::default();
        let policy = PasswordPolicy {
            max_failures: self.max_failures.unwrap_or(d.max_failures),
            window_seconds: self.window_seconds.unwrap_or(d.window_seconds),
            lockout_seconds: self.lockout_seconds.unwrap_or(d.lockout_seconds),
            user_delay_seconds: self.user_delay_seconds.unwrap_or(d.user_delay_seconds),
            max_user_delay_seconds: self
                .max_user_delay_seconds
                .unwrap_or(d.max_user_delay_seconds),
            max_concurrent_hashes: self
                .max_concurrent_hashes
                .unwrap_or(d.max_concurrent_hashes),
        };
        if !(1..=100).contains(&policy.max_failures) {
            return Err(err(
                "password_policy.max_failures",
                "must be between 1 and 100",
            ));
        }
        if !(1..=64).contains(&policy.max_concurrent_hashes) {
            return Err(err(
                "password_policy.max_concurrent_hashes",
                "must be between 1 and 64",
            ));
        }
        if policy.window_seconds == 0 || policy.lockout_seconds == 0 {
            return Err(err(
                "password_policy",
                "window_seconds and lockout_seconds must be positive",
            ));
        }
        if policy.user_delay_seconds == 0
            || policy.max_user_delay_seconds < policy.user_delay_seconds
            || policy.max_user_delay_seconds > 3600
        {
            return Err(err(
                "password_policy.max_user_delay_seconds",
                "need 0 < user_delay_seconds <= max_user_delay_seconds <= 3600",
            ));
        }
        Ok(policy)
    }
}
