//! The SSF transmitter (`[ssf]`) and the back-channel logout sender (`[backchannel_logout]`):
//! how long a poll may wait, how many SETs one answer carries, and how pushes are retried.

use super::{SettingsError, err};
use serde::Deserialize;
use std::time::Duration;

/// How a push (an SSF SET, a logout token) is attempted and retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first included); then the token is dropped, logged and counted.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles after each failure up to `max_retry`.
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// How long one attempt (connection, request, answer) may take.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempt`-th attempt (1-based) failed.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.first_retry
            .saturating_mul(1u32 << doublings)
            .min(self.max_retry)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<u32>,
    pub first_retry_ms: Option<u64>,
    pub max_retry_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
}

impl RawRetry {
    fn validate(self, at: &str) -> Result<RetryPolicy, SettingsError> {
        let d = RetryPolicy::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let policy = RetryPolicy {
            max_attempts: self.max_attempts.unwrap_or(d.max_attempts),
            first_retry: ms(self.first_retry_ms, d.first_retry),
            max_retry: ms(self.max_retry_ms, d.max_retry),
            timeout: ms(self.timeout_ms, d.timeout),
        };
        if !(1..=50).contains(&policy.max_attempts) {
            return Err(err(
                format!("{at}.max_attempts"),
                "must be between 1 and 50",
            ));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&policy.first_retry) {
            return Err(err(
                format!("{at}.first_retry_ms"),
                "must be between 10 and 3600000",
            ));
        }
        if policy.max_retry < policy.first_retry || policy.max_retry > Duration::from_secs(86_400) {
            return Err(err(
                format!("{at}.max_retry_ms"),
                "must be at least first_retry_ms and at most 86400000",
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&policy.timeout) {
            return Err(err(
                format!("{at}.timeout_ms"),
                "must be between 100 and 60000",
            ));
        }
        Ok(policy)
    }
}

/// The SSF transmitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssf {
    /// The longest an RFC 8936 poll without `returnImmediately` is held open.
    pub max_poll_wait: Duration,
    /// The most SETs one poll answer carries (a receiver's `maxEvents` is capped to it).
    pub max_events_per_poll: u32,
    /// How long an undelivered SET is kept (a receiver that stopped polling, a paused
    /// stream); then it is dropped, logged and counted.
    pub max_set_age_seconds: i64,
    /// Push delivery (RFC 8935).
    pub push: RetryPolicy,
}

impl Default for Ssf {
    fn default() -> Self {
        Ssf {
            max_poll_wait: Duration::from_secs(30),
            max_events_per_poll: 100,
            max_set_age_seconds: 7 * 86_400,
            push: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSsf {
    pub max_poll_wait_seconds: Option<u64>,
    pub max_events_per_poll: Option<u32>,
    pub max_set_age_seconds: Option<i64>,
    #[serde(default)]
    pub push: Option<RawRetry>,
}

impl RawSsf {
    pub fn validate(self) -> Result<Ssf, SettingsError> {
        let d = Ssf::default();
        let wait = self
            .max_poll_wait_seconds
            .map_or(d.max_poll_wait, Duration::from_secs);
        if wait > Duration::from_secs(300) {
            return Err(err("ssf.max_poll_wait_seconds", "must be at most 300"));
        }
        let max_events = self.max_events_per_poll.unwrap_or(d.max_events_per_poll);
        if !(1..=1000).contains(&max_events) {
            return Err(err("ssf.max_events_per_poll", "must be between 1 and 1000"));
        }
        let max_age = self.max_set_age_seconds.unwrap_or(d.max_set_age_seconds);
        if !(60..=30 * 86_400).contains(&max_age) {
            return Err(err(
                "ssf.max_set_age_seconds",
                "must be between 60 and 2592000",
            ));
        }
        Ok(Ssf {
            max_poll_wait: wait,
            max_events_per_poll: max_events,
            max_set_age_seconds: max_age,
            push: self.push.unwrap_or_default().validate("ssf.push")?,
        })
    }
}

/// The back-channel logout sender (OIDC Back-Channel Logout 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackchannelLogout {
    /// A logout token's lifetime (`exp` - `iat`, errata set 1).
    pub token_ttl_seconds: i64,
    pub delivery: RetryPolicy,
}

impl Default for BackchannelLogout {
    fn default() -> Self {
        BackchannelLogout {
            token_ttl_seconds: 120,
            delivery: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBackchannelLogout {
    pub token_ttl_seconds: Option<i64>,
    pub max_attempts: Option<u32>,
    pub first_retry_ms: Option<u64>,
    pub max_retry_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
}

impl RawBackchannelLogout {
    pub fn validate(self) -> Result<BackchannelLogout, SettingsError> {
        let ttl = self.token_ttl_seconds.unwrap_or(120);
        if !(10..=3600).contains(&ttl) {
            return Err(err(
                "backchannel_logout.token_ttl_seconds",
                "must be between 10 and 3600",
            ));
        }
        let delivery = RawRetry {
            max_attempts: self.max_attempts,
            first_retry_ms: self.first_retry_ms,
            max_retry_ms: self.max_retry_ms,
            timeout_ms: self.timeout_ms,
        }
        .validate("backchannel_logout")?;
        Ok(BackchannelLogout {
            token_ttl_seconds: ttl,
            delivery,
        })
    }
}

/// A push target URL (a client's `backchannel_logout_uri`, a stream's `endpoint_url`): `http://`
/// with a host, no fragment. The sender speaks plain HTTP only (as the federation fetcher):
/// an `https://` receiver is reached through a TLS-originating proxy (e.g. an Envoy sidecar).
pub fn check_push_url(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("{uri:?} is not a URL: {e}"))?;
    if url.scheme() == "https" {
        return Err(
            "https is not sent directly: give the http URL of a TLS-originating proxy".into(),
        );
    }
    if url.scheme() != "http" || url.host_str().is_none_or(str::is_empty) {
        return Err("must be an http URL with a host".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            first_retry: Duration::from_millis(100),
            max_retry: Duration::from_millis(350),
            timeout: Duration::from_secs(1),
        };
        let waits: Vec<u128> = (1..=4).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
    }

    #[test]
    fn bounds_are_checked_and_named() {
        let e = RawSsf {
            max_poll_wait_seconds: Some(301),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "ssf.max_poll_wait_seconds");
        let e = RawBackchannelLogout {
            max_attempts: Some(0),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "backchannel_logout.max_attempts");
        assert!(check_push_url("http://127.0.0.1:1/bcl").is_ok());
        assert!(check_push_url("https://rp.example/bcl").is_err());
        assert!(check_push_url("ftp://rp.example/bcl").is_err());
    }
}
