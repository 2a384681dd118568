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
//! The records live in the store (`login_*_failures`), so every replica on one database shares
//! the budgets; a failure is counted in a transaction that locks the records, so concurrent
//! failures on several replicas all count. The arithmetic below is pure (time is a parameter).

use crate::settings::PasswordPolicy;
use crate::store::{AddressFailures, LoginFailures, Store, StoreResult, UserFailures};
use std::net::IpAddr;

fn seconds(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

pub struct Lockout {
    policy: PasswordPolicy,
}

impl Lockout {
    pub fn new(policy: PasswordPolicy) -> Self {
        Lockout { policy }
    }

    /// How long a user must wait after their last failure, given `failures` so far.
    fn user_delay(&self, failures: i64) -> i64 {
        let max = i64::from(self.policy.max_failures);
        if failures < max {
            return 0;
        }
        let doublings = u32::try_from((failures - max).min(32)).unwrap_or(32);
        let delay = self
            .policy
            .user_delay_seconds
            .saturating_mul(1u64 << doublings);
        seconds(delay.min(self.policy.max_user_delay_seconds))
    }

    /// Whether the recorded failures let an attempt be checked at `now`.
    pub fn admits_records(&self, records: &LoginFailures, now: i64) -> bool {
        let address_locked = records.address.is_some_and(|r| r.locked_until > now);
        let user_waiting = records
            .user
            .is_some_and(|r| r.last_failure.saturating_add(self.user_delay(r.failures)) > now);
        !address_locked && !user_waiting
    }

    /// The records after one more failure at `now` (the address's only when it is known).
    pub fn after_failure(
        &self,
        records: &LoginFailures,
        address_known: bool,
        now: i64,
    ) -> LoginFailures {
        let window = seconds(self.policy.window_seconds);
        let address = address_known.then(|| {
            let mut r = records
                .address
                .filter(|r| now - r.window_start < window)
                .unwrap_or(AddressFailures {
                    failures: 0,
                    window_start: now,
                    locked_until: 0,
                    forget_at: 0,
                });
            r.failures += 1;
            if r.failures >= i64::from(self.policy.max_failures) {
                r.locked_until = now.saturating_add(seconds(self.policy.lockout_seconds));
                r.failures = 0;
                r.window_start = now;
            }
            r.forget_at = r.locked_until.max(r.window_start.saturating_add(window));
            r
        });
        let mut user = records.user.unwrap_or(UserFailures {
            failures: 0,
            last_failure: now,
            forget_at: 0,
        });
        // a quiet window forgives earlier failures
        if now - user.last_failure >= window {
            user.failures = 0;
        }
        user.failures = user.failures.saturating_add(1);
        user.last_failure = now;
        user.forget_at = now
            .saturating_add(window)
            .max(now.saturating_add(self.user_delay(user.failures)));
        LoginFailures {
            user: Some(user),
            address,
        }
    }

    /// Whether an attempt for `user` from `address` (when known) may be checked at `now`.
    pub async fn admits(
        &self,
        store: &dyn Store,
        user: &str,
        address: Option<IpAddr>,
        now: i64,
    ) -> StoreResult<bool> {
        let address = address.map(|a| a.to_string());
        let records = store.login_failures(user, address.as_deref()).await?;
        Ok(self.admits_records(&records, now))
    }

    /// A wrong password (or unknown user) that was checked: counted, committed before the
    /// answer.
    pub async fn record_failure(
        &self,
        store: &dyn Store,
        user: &str,
        address: Option<IpAddr>,
        now: i64,
    ) -> StoreResult<()> {
        let address = address.map(|a| a.to_string());
        let mut tx = store.begin().await?;
        let records = tx
            .login_failures_for_update(user, address.as_deref())
            .await?;
        let updated = self.after_failure(&records, address.is_some(), now);
        tx.set_login_failures(user, address.as_deref(), &updated)
            .await?;
        tx.commit().await
    }

    /// A success clears the user's count (not the address's: one good password must not reset
    /// an attacker's budget against other users).
    pub async fn record_success(&self, store: &dyn Store, user: &str) -> StoreResult<()> {
        store.clear_user_failures(user).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code
    use super::*;
    use std::sync::Arc;

    /// The lockout over a real (SQLite) store.
    struct Harness {
        lockout: Lockout,
        store: Arc<dyn Store>,
        _dir: tempfile::TempDir,
    }

    impl Harness {
        async fn new(policy: PasswordPolicy) -> Harness {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/idp.sqlite?mode=rwc", dir.path().display());
            let store = crate::store::open(&url).await.unwrap();
            Harness {
                lockout: Lockout::new(policy),
                store,
                _dir: dir,
            }
        }

        async fn admits(&self, user: &str, address: Option<IpAddr>, now: i64) -> bool {
            self.lockout
                .admits(&*self.store, user, address, now)
                .await
                .unwrap()
        }

        async fn record_failure(&self, user: &str, address: Option<IpAddr>, now: i64) {
            self.lockout
                .record_failure(&*self.store, user, address, now)
                .await
                .unwrap();
        }

        async fn record_success(&self, user: &str) {
            self.lockout
                .record_success(&*self.store, user)
                .await
                .unwrap();
        }
    }

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

    #[tokio::test]
    async fn an_address_is_locked_after_max_failures_and_unlocked_later() {
        let l = Harness::new(policy()).await;
        let guesser: IpAddr = [203, 0, 113, 7].into();
        for (i, user) in ["a", "b", "c"].into_iter().enumerate() {
            assert!(l.admits(user, Some(guesser), 100).await, "attempt {i}");
            l.record_failure(user, Some(guesser), 100).await;
        }
        // three users, one failure each: only the address is out of budget
        assert!(!l.admits("d", Some(guesser), 100).await);
        assert!(!l.admits("d", Some(guesser), 129).await);
        assert!(l.admits("d", Some(guesser), 130).await);
        // ...and nobody else is
        assert!(l.admits("d", Some([198, 51, 100, 9].into()), 100).await);
        assert!(l.admits("d", None, 100).await);
    }

    #[tokio::test]
    async fn a_user_is_delayed_exponentially_never_locked_for_long() {
        let l = Harness::new(policy()).await;
        let mut now = 1000;
        for _ in 0..2 {
            l.record_failure("alice", None, now).await;
        }
        assert!(
            l.admits("alice", None, now).await,
            "below max_failures: no delay"
        );
        // 3rd failure: 2 s; then 4, 8, 16, 16 (the cap), ...
        for expected in [2, 4, 8, 16, 16, 16, 16] {
            l.record_failure("alice", None, now).await;
            assert!(!l.admits("alice", None, now + expected - 1).await);
            assert!(
                l.admits("alice", None, now + expected).await,
                "delay {expected}"
            );
            now += expected;
        }
        // however many failures an attacker piles up, the user waits at most the cap
        for _ in 0..100 {
            l.record_failure("alice", None, now).await;
        }
        assert!(l.admits("alice", None, now + 16).await);
        // other users are not affected
        assert!(l.admits("bob", None, now).await);
    }

    #[tokio::test]
    async fn a_success_clears_the_user_and_a_quiet_window_forgives() {
        let l = Harness::new(policy()).await;
        for _ in 0..3 {
            l.record_failure("alice", None, 0).await;
        }
        l.record_success("alice").await;
        assert!(l.admits("alice", None, 0).await);
        for _ in 0..3 {
            l.record_failure("bob", None, 0).await;
        }
        l.record_failure("bob", None, 600).await;
        assert!(
            l.admits("bob", None, 600).await,
            "failures older than the window are forgotten"
        );
    }
}
