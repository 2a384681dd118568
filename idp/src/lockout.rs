//! Brute-force protection for the password grant: failures are counted per user and per client
//! IP within a window; reaching the limit locks that key out for a while. In memory: one IDP
//! instance (a shared store is needed once there are several replicas).

use crate::settings::PasswordPolicy;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    window_start: i64,
    locked_until: i64,
}

/// Bound on tracked keys, so a flood of distinct usernames cannot exhaust memory.
const MAX_KEYS: usize = 100_000;

pub struct Lockout {
    policy: PasswordPolicy,
    records: Mutex<HashMap<String, Record>>,
}

impl Lockout {
    pub fn new(policy: PasswordPolicy) -> Self {
        Lockout {
            policy,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any of `keys` is locked out at `now`.
    pub fn is_locked(&self, keys: &[String], now: i64) -> bool {
        let Ok(records) = self.records.lock() else {
            return true;
        };
        keys.iter()
            .any(|k| records.get(k).is_some_and(|r| r.locked_until > now))
    }

    pub fn record_failure(&self, keys: &[String], now: i64) {
        let Ok(mut records) = self.records.lock() else {
            return;
        };
        if records.len() >= MAX_KEYS {
            records.retain(|_, r| r.locked_until > now || now - r.window_start < self.window());
        }
        for key in keys {
            let r = records.entry(key.clone()).or_insert(Record {
                failures: 0,
                window_start: now,
                locked_until: 0,
            });
            if now - r.window_start >= self.window() {
                *r = Record {
                    failures: 0,
                    window_start: now,
                    locked_until: 0,
                };
            }
            r.failures += 1;
            if r.failures >= self.policy.max_failures {
                r.locked_until =
                    now + i64::try_from(self.policy.lockout_seconds).unwrap_or(i64::MAX);
                r.failures = 0;
                r.window_start = now;
            }
        }
    }

    /// A success clears the user's count (not the IP's: one good password must not reset an
    /// attacker's budget against other users).
    pub fn record_success(&self, user_key: &str) {
        if let Ok(mut records) = self.records.lock() {
            records.remove(user_key);
        }
    }

    fn window(&self) -> i64 {
        i64::try_from(self.policy.window_seconds).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_later() {
        let l = Lockout::new(PasswordPolicy {
            max_failures: 3,
            window_seconds: 60,
            lockout_seconds: 30,
            max_concurrent_hashes: 1,
        });
        let keys = ["user:a".to_owned(), "ip:1".to_owned()];
        for _ in 0..2 {
            l.record_failure(&keys, 100);
        }
        assert!(!l.is_locked(&keys, 100));
        l.record_failure(&keys, 100);
        assert!(l.is_locked(&keys, 100));
        assert!(l.is_locked(&["ip:1".to_owned()], 129));
        assert!(!l.is_locked(&keys, 130));
        // failures outside the window do not add up
        let other = ["user:b".to_owned()];
        l.record_failure(&other, 0);
        l.record_failure(&other, 0);
        l.record_failure(&other, 61);
        assert!(!l.is_locked(&other, 61));
    }
}
