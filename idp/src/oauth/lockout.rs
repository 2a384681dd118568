//! Brute-force protection of password logins (the password grant and the login form), in two
//! budgets:
//!
//! - **per client address**, when the IDP knows the real one (the peer, or the `X-Forwarded-For`
//!   entry of a trusted proxy, see the http layer's `client_address`): `max_failures` failures within
//!   `window_seconds` lock that address out for `lockout_seconds`. Only the guesser is locked.
//! - **per user**: never a hard lock (anyone can type a victim's name, so a hard lock would let
//!   anyone lock a named user out). From the `max_failures`-th failure on, the user's next
//!   attempt is refused until a delay after the last failure has passed; the delay starts at
//!   `user_delay_seconds` and doubles with each further failure up to `max_user_delay_seconds`.
//!   Attempts refused by the delay do not count. So an attacker gets about one guess per
//!   `max_user_delay_seconds`, and a user is kept out at most that long after the attacker stops.
//!
//! In memory: one IDP instance (a shared store is needed once there are several replicas).

use crate::settings::PasswordPolicy;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy)]
struct AddressRecord {
    failures: u32,
    window_start: i64,
    locked_until: i64,
}

#[derive(Debug, Clone, Copy)]
struct UserRecord {
    failures: u32,
    last_failure: i64,
}

/// Bound on tracked keys, so a flood of distinct usernames or addresses cannot exhaust memory.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
struct Records {
    addresses: HashMap<IpAddr, AddressRecord>,
    users: HashMap<String, UserRecord>,
}

pub struct Lockout {
    policy: PasswordPolicy,
    records: Mutex<Records>,
}

fn seconds(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

impl Lockout {
    pub fn new(policy: PasswordPolicy) -> Self {
        Lockout {
            policy,
            records: Mutex::new(Records::default()),
        }
    }

    /// How long `user` must wait after their last failure, given `failures` so far.
    fn user_delay(&self, failures: u32) -> i64 {
        if failures < self.policy.max_failures {
            return 0;
        }
        let doublings = (failures - self.policy.max_failures).min(32);
        let delay = self
            .policy
            .user_delay_seconds
            .saturating_mul(1u64 << doublings);
        seconds(delay.min(self.policy.max_user_delay_seconds))
    }

    /// Whether an attempt for `user` from `address` (when known) may be checked at `now`.
    pub fn admits(&self, user: &str, address: Option<IpAddr>, now: i64) -> bool {
        let Ok(records) = self.records.lock() else {
            return false;
        };
        let address_locked = address
            .and_then(|a| records.addresses.get(&a))
            .is_some_and(|r| r.locked_until > now);
        let user_waiting = records
            .users
            .get(user)
            .is_some_and(|r| r.last_failure + self.user_delay(r.failures) > now);
        !address_locked && !user_waiting
    }

    /// A wrong password (or unknown user) that was checked.
    pub fn record_failure(&self, user: &str, address: Option<IpAddr>, now: i64) {
        let Ok(mut records) = self.records.lock() else {
            return;
        };
        let window = seconds(self.policy.window_seconds);
        if records.addresses.len() >= MAX_KEYS {
            records
                .addresses
                .retain(|_, r| r.locked_until > now || now - r.window_start < window);
        }
        if records.users.len() >= MAX_KEYS {
            records.users.retain(|_, r| now - r.last_failure < window);
        }
        if let Some(address) = address {
            let r = records.addresses.entry(address).or_insert(AddressRecord {
                failures: 0,
                window_start: now,
                locked_until: 0,
            });
            if now - r.window_start >= window {
                *r = AddressRecord {
                    failures: 0,
                    window_start: now,
                    locked_until: 0,
                };
            }
            r.failures += 1;
            if r.failures >= self.policy.max_failures {
                r.locked_until = now.saturating_add(seconds(self.policy.lockout_seconds));
                r.failures = 0;
                r.window_start = now;
            }
        }
        let r = records.users.entry(user.to_owned()).or_insert(UserRecord {
            failures: 0,
            last_failure: now,
        });
        // a quiet window forgives earlier failures
        if now - r.last_failure >= window {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last_failure = now;
    }

    /// A success clears the user's count (not the address's: one good password must not reset
    /// an attacker's budget against other users).
    pub fn record_success(&self, user: &str) {
        if let Ok(mut records) = self.records.lock() {
            records.users.remove(user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy {
            max_failures: 3,
            window_seconds: 600,
            lockout_seconds: 30,
            user_delay_seconds: 2,
            max_user_delay_seconds: 16,
            max_concurrent_hashes: 1,
        }
    }

    #[test]
    fn an_address_is_locked_after_max_failures_and_unlocked_later() {
        let l = Lockout::new(policy());
        let guesser: IpAddr = [203, 0, 113, 7].into();
        for (i, user) in ["a", "b", "c"].into_iter().enumerate() {
            assert!(l.admits(user, Some(guesser), 100), "attempt {i}");
            l.record_failure(user, Some(guesser), 100);
        }
        // three users, one failure each: only the address is out of budget
        assert!(!l.admits("d", Some(guesser), 100));
        assert!(!l.admits("d", Some(guesser), 129));
        assert!(l.admits("d", Some(guesser), 130));
        // ...and nobody else is
        assert!(l.admits("d", Some([198, 51, 100, 9].into()), 100));
        assert!(l.admits("d", None, 100));
    }

    #[test]
    fn a_user_is_delayed_exponentially_never_locked_for_long() {
        let l = Lockout::new(policy());
        let mut now = 1000;
        for _ in 0..2 {
            l.record_failure("alice", None, now);
        }
        assert!(l.admits("alice", None, now), "below max_failures: no delay");
        // 3rd failure: 2 s; then 4, 8, 16, 16 (the cap), ...
        for expected in [2, 4, 8, 16, 16, 16, 16] {
            l.record_failure("alice", None, now);
            assert!(!l.admits("alice", None, now + expected - 1));
            assert!(l.admits("alice", None, now + expected), "delay {expected}");
            now += expected;
        }
        // however many failures an attacker piles up, the user waits at most the cap
        for _ in 0..1000 {
            l.record_failure("alice", None, now);
        }
        assert!(l.admits("alice", None, now + 16));
        // other users are not affected
        assert!(l.admits("bob", None, now));
    }

    #[test]
    fn a_success_clears_the_user_and_a_quiet_window_forgives() {
        let l = Lockout::new(policy());
        for _ in 0..3 {
            l.record_failure("alice", None, 0);
        }
        l.record_success("alice");
        assert!(l.admits("alice", None, 0));
        for _ in 0..3 {
            l.record_failure("bob", None, 0);
        }
        l.record_failure("bob", None, 600);
        assert!(
            l.admits("bob", None, 600),
            "failures older than the window are forgotten"
        );
    }
}
