//! Contract checks that need two stores on one database: two IDP replicas (on SQLite, one store
//! twice), and the login budgets and wake-ups every replica shares.

use super::{NOW, code, refresh, session};
use idp::oauth::keys::encryption::Kek;
use idp::oauth::keys::{self, KeyPolicy, SigningAlg};
use idp::store::{AddressFailures, CodeUse, LoginFailures, Store, UserFailures};
use std::sync::Arc;
use std::time::Duration;

/// Long enough for anything that works; reaching it fails the test (no speed is asserted).
const PATIENCE: Duration = Duration::from_secs(10);

pub async fn login_failures_are_kept_per_user_and_address(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let addr = Some("203.0.113.7");
    assert_eq!(
        a.login_failures("alice", addr).await.unwrap(),
        LoginFailures::default()
    );
    let records = LoginFailures {
        user: Some(UserFailures {
            failures: 2,
            last_failure: NOW,
            forget_at: NOW + 10,
        }),
        address: Some(AddressFailures {
            failures: 1,
            window_start: NOW - 5,
            locked_until: 0,
            forget_at: NOW + 20,
        }),
    };
    let mut tx = a.begin().await.unwrap();
    assert_eq!(
        tx.login_failures_for_update("alice", addr).await.unwrap(),
        LoginFailures::default()
    );
    tx.set_login_failures("alice", addr, &records)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // the other replica sees them
    assert_eq!(b.login_failures("alice", addr).await.unwrap(), records);
    let bob = b.login_failures("bob", addr).await.unwrap();
    assert_eq!((bob.user, bob.address), (None, records.address));
    assert_eq!(b.login_failures("alice", None).await.unwrap().address, None);

    b.clear_user_failures("alice").await.unwrap();
    assert_eq!(a.login_failures("alice", addr).await.unwrap().user, None);
    // the purge drops what is past its forget_at
    a.purge_expired(NOW + 20).await.unwrap();
    assert_eq!(
        b.login_failures("alice", addr).await.unwrap(),
        LoginFailures::default()
    );
}

pub async fn across_replicas_concurrent_login_failures_all_count(
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
) {
    let fail = |store: Arc<dyn Store>| async move {
        let mut tx = store.begin().await.unwrap();
        let mut r = tx
            .login_failures_for_update("alice", Some("198.51.100.1"))
            .await
            .unwrap();
        let mut user = r.user.unwrap_or_default();
        user.failures += 1;
        user.forget_at = NOW + 600;
        r.user = Some(user);
        tokio::task::yield_now().await;
        tx.set_login_failures("alice", Some("198.51.100.1"), &r)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    };
    let tasks: Vec<_> = (0..12)
        .map(|i| tokio::spawn(fail(Arc::clone(if i % 2 == 0 { &a } else { &b }))))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let r = a.login_failures("alice", None).await.unwrap();
    assert_eq!(r.user.map(|u| u.failures), Some(12), "lost updates");
}

pub async fn a_committed_revocation_wakes_the_signal(a: Arc<dyn Store>, _b: Arc<dyn Store>) {
    let mut woken = a.revocation_signal().subscribe();
    let mut tx = a.begin().await.unwrap();
    tx.revoke_jti("j-wake", NOW + 60, NOW).await.unwrap();
    tx.commit().await.unwrap();
    tokio::time::timeout(PATIENCE, woken.changed())
        .await
        .expect("no wake-up after a committed revocation")
        .unwrap();
}

pub async fn across_replicas_the_feed_cursor_never_skips_an_uncommitted_entry(
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
) {
    let (_, start) = a.revocations_since(None, NOW, 100).await.unwrap();
    // Replica A revokes and holds its transaction open...
    let mut first = a.begin().await.unwrap();
    first.revoke_jti("j-first", NOW + 600, NOW).await.unwrap();
    // ...while replica B revokes later and commits (if the backend lets it before A does).
    let other = Arc::clone(&b);
    let later = tokio::spawn(async move {
        let mut tx = other.begin().await.unwrap();
        tx.revoke_jti("j-later", NOW + 600, NOW).await.unwrap();
        tx.commit().await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A gateway reads the feed now (from B).
    let (seen, cursor) = b.revocations_since(Some(start), NOW, 100).await.unwrap();
    assert!(
        seen.iter().all(|r| r.value != "j-first"),
        "an uncommitted entry was served"
    );
    first.commit().await.unwrap();
    later.await.unwrap();
    // ...and again from its cursor: nothing may have been stepped over.
    let (rest, _) = a.revocations_since(Some(cursor), NOW, 100).await.unwrap();
    let mut values: Vec<&str> = seen
        .iter()
        .chain(rest.iter())
        .map(|r| r.value.as_str())
        .collect();
    values.sort_unstable();
    assert_eq!(
        values,
        ["j-first", "j-later"],
        "the cursor {cursor} (after reading {seen:?}) skipped an entry"
    );
}

pub async fn across_replicas_a_code_is_used_once(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    a.insert_code(&code(b"c-replicas")).await.unwrap();
    let redeem = |store: Arc<dyn Store>| async move {
        let mut tx = store.begin().await.unwrap();
        let used = tx.use_code(b"c-replicas", NOW).await.unwrap();
        tokio::task::yield_now().await;
        tx.commit().await.unwrap();
        used
    };
    let tasks: Vec<_> = (0..8)
        .map(|i| tokio::spawn(redeem(Arc::clone(if i % 2 == 0 { &a } else { &b }))))
        .collect();
    let (mut first, mut replayed) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            CodeUse::First(_) => first += 1,
            CodeUse::Replayed { .. } => replayed += 1,
            CodeUse::Unknown => panic!("the code vanished"),
        }
    }
    assert_eq!((first, replayed), (1, 7));
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rotation {
    Won,
    /// Saw the token used: a reuse, which ends the session.
    Reuse,
    /// Lost the race without seeing the use (a backend that does not serialise the check).
    Lost,
}

pub async fn across_replicas_a_refresh_token_is_used_once(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let mut tx = a.begin().await.unwrap();
    tx.create_session(&session("s-race", None)).await.unwrap();
    tx.insert_refresh_token(&refresh(b"r-race", "s-race"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // what the refresh grant does with a presented token
    let rotate = |store: Arc<dyn Store>| async move {
        let mut tx = store.begin().await.unwrap();
        let found = tx.find_refresh_token(b"r-race").await.unwrap().unwrap();
        if found.used {
            tx.end_session(&found.sid, NOW + 900, NOW).await.unwrap();
            tx.commit().await.unwrap();
            return Rotation::Reuse;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !tx.mark_refresh_used(b"r-race", NOW).await.unwrap() {
            return Rotation::Lost;
        }
        tx.commit().await.unwrap();
        Rotation::Won
    };
    let (x, y) = tokio::join!(
        tokio::spawn(rotate(Arc::clone(&a))),
        tokio::spawn(rotate(Arc::clone(&b)))
    );
    let mut outcomes = [x.unwrap(), y.unwrap()];
    outcomes.sort();
    assert_eq!(outcomes, [Rotation::Won, Rotation::Reuse]);
    assert!(a.is_revoked("any", Some("s-race")).await.unwrap());
}

pub async fn across_replicas_keys_are_created_once(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let kek = Kek::from_bytes(&[7; 32]).unwrap();
    let policy = KeyPolicy {
        alg: SigningAlg::Es256,
        rs256_id_tokens: true,
        retire_after: 600,
    };
    // two replicas starting at once
    let (ra, rb) = tokio::join!(
        keys::load_or_create(&*a, &kek, policy, NOW),
        keys::load_or_create(&*b, &kek, policy, NOW)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.active_kid, rb.active_kid);
    let stored = a.signing_keys().await.unwrap();
    assert_eq!(
        stored.iter().filter(|k| k.active).count(),
        1,
        "one active key"
    );
    assert_eq!(stored.len(), 2, "one ES256 key and one standing RS256 key");

    // a rotation: published at once on every replica, signing only when due, activated once
    let new = keys::schedule_rotation(&*a, &kek, SigningAlg::Es256, NOW, 10)
        .await
        .unwrap();
    let ring = keys::load(&*b, &kek).await.unwrap();
    assert_eq!(ring.active_kid, ra.active_kid, "signs before it is due");
    assert!(ring.verifying.iter().any(|k| k.kid == new), "not published");
    let (x, y) = tokio::join!(
        keys::advance(&*a, &kek, policy, NOW + 10),
        keys::advance(&*b, &kek, policy, NOW + 10)
    );
    x.unwrap();
    y.unwrap();
    let stored = b.signing_keys().await.unwrap();
    let active: Vec<&str> = stored
        .iter()
        .filter(|k| k.active)
        .map(|k| k.kid.as_str())
        .collect();
    assert_eq!(active, [new.as_str()]);
    assert_eq!(stored.len(), 3, "the replaced key stays published");
}

pub async fn across_replicas_revocations_wake_the_other_replica(
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
) {
    // Several rounds: a wake-up after B's listener (re)connects is not what is tested here.
    for round in 0..3 {
        let jti = format!("j-push-{round}");
        let (_, cursor) = b.revocations_since(None, NOW, 1000).await.unwrap();
        let mut woken = b.revocation_signal().subscribe();
        let mut tx = a.begin().await.unwrap();
        tx.revoke_jti(&jti, NOW + 60, NOW).await.unwrap();
        tx.commit().await.unwrap();
        // B wakes (perhaps spuriously first); what it reads then has A's entry
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                woken.changed().await.unwrap();
                let (new, _) = b.revocations_since(Some(cursor), NOW, 100).await.unwrap();
                if new.iter().any(|r| r.value == jti) {
                    return;
                }
            }
        })
        .await;
        assert!(found.is_ok(), "round {round}: replica B was not woken");
    }
}
