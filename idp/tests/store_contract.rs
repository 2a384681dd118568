//! The storage contract (`idp::store`), checked through the `Store` and `Transaction` traits only:
//! what the domain code relies on from any backend. Each check takes a fresh `Arc<dyn Store>`
//! and runs on SQLite and on PostgreSQL (a real server, see `pg_cluster`). The checks named
//! `across_replicas_*` take two stores on one database (two IDP replicas): on SQLite both are
//! the same store, on PostgreSQL two connection pools.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use idp::store::{
    CodeUse, FormToken, IssuedToken, NewCode, NewKey, NewRefreshToken, NewSession, NewSsoSession,
    Store,
};
use std::sync::Arc;

mod pg_cluster;

const NOW: i64 = 1_800_000_000;

async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/idp.sqlite?mode=rwc", dir.path().display());
    let store = idp::store::open(&url).await.unwrap();
    (dir, store)
}

fn code<'a>(hash: &'a [u8]) -> NewCode<'a> {
    NewCode {
        hash,
        client_id: "web",
        redirect_uri: "https://app.example/cb",
        sub: "alice",
        scope: "openid api:read",
        code_challenge: Some("challenge"),
        code_challenge_method: Some("S256"),
        nonce: Some("n-1"),
        auth_time: NOW - 5,
        amr: "pwd",
        sso_id: None,
        now: NOW,
        expires_at: NOW + 60,
        dpop_jkt: Some("jkt-code"),
    }
}

fn session<'a>(sid: &'a str, sso_id: Option<&'a str>) -> NewSession<'a> {
    NewSession {
        sid,
        sub: "alice",
        client_id: "web",
        sso_id,
        now: NOW,
        expires_at: NOW + 3600,
    }
}

fn refresh<'a>(hash: &'a [u8], sid: &'a str) -> NewRefreshToken<'a> {
    NewRefreshToken {
        hash,
        family: "fam-1",
        sid,
        client_id: "web",
        sub: "alice",
        scope: "api:read",
        now: NOW,
        expires_at: NOW + 600,
        dpop_jkt: None,
    }
}

async fn a_dropped_transaction_leaves_nothing(store: Arc<dyn Store>, _other: Arc<dyn Store>) {
    let mut tx = store.begin().await.unwrap();
    tx.create_session(&session("s-1", None)).await.unwrap();
    tx.insert_refresh_token(&refresh(b"r-1", "s-1"))
        .await
        .unwrap();
    tx.revoke_jti("j-1", NOW + 60, NOW).await.unwrap();
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    assert!(tx.find_refresh_token(b"r-1").await.unwrap().is_none());
    assert!(!store.is_revoked("j-1", None).await.unwrap());
    // the session id is free again: nothing of the first transaction was written
    tx.create_session(&session("s-1", None)).await.unwrap();
    tx.commit().await.unwrap();
}

async fn a_code_is_used_once(store: Arc<dyn Store>, _other: Arc<dyn Store>) {
    store.insert_code(&code(b"c-1")).await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let CodeUse::First(stored) = tx.use_code(b"c-1", NOW + 1).await.unwrap() else {
        panic!("the first use must see the code");
    };
    assert_eq!(
        (stored.client_id.as_str(), stored.sub.as_str()),
        ("web", "alice")
    );
    assert_eq!(stored.code_challenge.as_deref(), Some("challenge"));
    assert_eq!(stored.nonce.as_deref(), Some("n-1"));
    assert_eq!(stored.expires_at, NOW + 60);
    tx.create_session(&session("s-code", None)).await.unwrap();
    tx.set_code_session(b"c-1", "s-code").await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    match tx.use_code(b"c-1", NOW + 2).await.unwrap() {
        CodeUse::Replayed { sid } => assert_eq!(sid.as_deref(), Some("s-code")),
        other => panic!("a second use is a replay, got {other:?}"),
    }
    assert!(matches!(
        tx.use_code(b"never-issued", NOW).await.unwrap(),
        CodeUse::Unknown
    ));
}

async fn a_refused_redemption_keeps_the_code(store: Arc<dyn Store>, _other: Arc<dyn Store>) {
    store.insert_code(&code(b"c-2")).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.use_code(b"c-2", NOW).await.unwrap(),
        CodeUse::First(_)
    ));
    drop(tx); // e.g. a wrong code_verifier: rolled back
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.use_code(b"c-2", NOW).await.unwrap(),
        CodeUse::First(_)
    ));
}

async fn concurrent_redemptions_have_one_winner(store: Arc<dyn Store>, _other: Arc<dyn Store>) {
    store.insert_code(&code(b"c-race")).await.unwrap();
    let redeem = |store: Arc<dyn Store>| async move {
        let mut tx = store.begin().await.unwrap();
        let first = matches!(
            tx.use_code(b"c-race", NOW).await.unwrap(),
            CodeUse::First(_)
        );
        tokio::task::yield_now().await;
        tx.commit().await.unwrap();
        first
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| tokio::spawn(redeem(Arc::clone(&store))))
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn a_refresh_token_is_used_once_and_dies_with_its_session(
    store: Arc<dyn Store>,
    _other: Arc<dyn Store>,
) {
    let mut tx = store.begin().await.unwrap();
    tx.create_session(&session("s-r", None)).await.unwrap();
    tx.insert_refresh_token(&refresh(b"r-2", "s-r"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let found = tx.find_refresh_token(b"r-2").await.unwrap().unwrap();
    assert_eq!(
        (found.sid.as_str(), found.family.as_str()),
        ("s-r", "fam-1")
    );
    assert_eq!(found.session_expires_at, NOW + 3600);
    assert!(!found.used && !found.revoked && !found.session_ended);
    assert!(tx.mark_refresh_used(b"r-2", NOW).await.unwrap());
    assert!(!tx.mark_refresh_used(b"r-2", NOW).await.unwrap());
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.end_session("s-r", NOW + 900, NOW).await.unwrap();
    tx.end_session("s-r", NOW + 900, NOW).await.unwrap(); // idempotent
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let after = tx.find_refresh_token(b"r-2").await.unwrap().unwrap();
    assert!(after.used && after.revoked && after.session_ended);
    assert!(store.is_revoked("any-jti", Some("s-r")).await.unwrap());
    let (feed, _) = store.revocations_since(None, NOW, 100).await.unwrap();
    assert_eq!(feed.iter().filter(|r| r.value == "s-r").count(), 1);
}

async fn the_feed_is_ordered_and_its_cursor_never_goes_back(
    store: Arc<dyn Store>,
    _other: Arc<dyn Store>,
) {
    let mut tx = store.begin().await.unwrap();
    tx.revoke_jti("j-a", NOW + 10, NOW).await.unwrap();
    tx.revoke_jti("j-b", NOW + 1000, NOW).await.unwrap();
    tx.revoke_jti("j-a", NOW + 20, NOW).await.unwrap(); // again: same place, later expiry
    tx.commit().await.unwrap();

    let (all, cursor) = store.revocations_since(None, NOW, 100).await.unwrap();
    let values: Vec<&str> = all.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values, ["j-a", "j-b"]);
    assert!(all[0].seq < all[1].seq);
    assert_eq!(all[0].exp, NOW + 20);
    assert_eq!(cursor, all[1].seq);
    // paging
    let (first, c1) = store.revocations_since(None, NOW, 1).await.unwrap();
    assert_eq!((first.len(), c1), (1, all[0].seq));
    let (rest, _) = store.revocations_since(Some(c1), NOW, 1).await.unwrap();
    assert_eq!(rest[0].value, "j-b");
    // expired entries are not served
    let (live, _) = store.revocations_since(None, NOW + 100, 100).await.unwrap();
    assert_eq!(live.len(), 1);

    // After everything expired and was purged, the cursor stays where it was and a new
    // revocation still comes after it.
    store.purge_expired(NOW + 2000).await.unwrap();
    let (none, idle) = store
        .revocations_since(None, NOW + 2000, 100)
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(idle >= cursor, "cursor went back from {cursor} to {idle}");
    let mut tx = store.begin().await.unwrap();
    tx.revoke_jti("j-c", NOW + 5000, NOW + 2000).await.unwrap();
    tx.commit().await.unwrap();
    let (new, _) = store
        .revocations_since(Some(idle), NOW + 2000, 100)
        .await
        .unwrap();
    assert_eq!(new.len(), 1);
    assert!(new[0].seq > cursor);
}

async fn sso_sessions_end_with_their_token_sessions(store: Arc<dyn Store>, _other: Arc<dyn Store>) {
    store
        .insert_sso_session(&NewSsoSession {
            id: "sso-1",
            sub: "alice",
            auth_time: NOW,
            amr: "pwd",
            now: NOW,
            expires_at: NOW + 100,
        })
        .await
        .unwrap();
    let found = store.find_sso_session("sso-1", NOW).await.unwrap().unwrap();
    assert_eq!((found.sub.as_str(), found.amr.as_str()), ("alice", "pwd"));
    assert!(
        store
            .find_sso_session("sso-1", NOW + 100)
            .await
            .unwrap()
            .is_none()
    );
    store
        .reauthenticate_sso_session("sso-1", NOW + 5, "pwd otp")
        .await
        .unwrap();
    let again = store.find_sso_session("sso-1", NOW).await.unwrap().unwrap();
    assert_eq!((again.auth_time, again.amr.as_str()), (NOW + 5, "pwd otp"));

    let mut tx = store.begin().await.unwrap();
    tx.create_session(&session("s-sso-a", Some("sso-1")))
        .await
        .unwrap();
    tx.create_session(&session("s-sso-b", Some("sso-1")))
        .await
        .unwrap();
    tx.create_session(&session("s-other", None)).await.unwrap();
    tx.end_session("s-sso-b", NOW + 60, NOW).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .sso_of_token_session("s-sso-a")
            .await
            .unwrap()
            .as_deref(),
        Some("sso-1")
    );
    assert_eq!(store.sso_of_token_session("s-other").await.unwrap(), None);

    let mut tx = store.begin().await.unwrap();
    let live = tx.end_sso_session("sso-1", NOW + 1).await.unwrap();
    assert_eq!(live, ["s-sso-a"]); // the ended one is not handed back
    tx.commit().await.unwrap();
    assert!(
        store
            .find_sso_session("sso-1", NOW + 2)
            .await
            .unwrap()
            .is_none()
    );
}

async fn consent_is_per_user_and_client(store: Arc<dyn Store>, _other: Arc<dyn Store>) {
    assert_eq!(store.consented_scopes("alice", "web").await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    tx.set_consent("alice", "web", "openid", NOW).await.unwrap();
    tx.set_consent("alice", "web", "openid api:read", NOW)
        .await
        .unwrap();
    assert_eq!(
        tx.consented_scopes("alice", "web")
            .await
            .unwrap()
            .as_deref(),
        Some("openid api:read")
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .consented_scopes("alice", "web")
            .await
            .unwrap()
            .as_deref(),
        Some("openid api:read")
    );
    assert_eq!(store.consented_scopes("bob", "web").await.unwrap(), None);
    assert_eq!(store.consented_scopes("alice", "cli").await.unwrap(), None);
}

async fn a_form_token_is_consumed_once_by_its_browser(
    store: Arc<dyn Store>,
    _other: Arc<dyn Store>,
) {
    let token = |hash| FormToken {
        hash,
        browser: "browser-1",
        purpose: "login",
        expires_at: NOW + 60,
    };
    store.insert_form_token(&token("f-1")).await.unwrap();
    store.insert_form_token(&token("f-2")).await.unwrap();
    let consume = |hash, browser, purpose, now| {
        let store = Arc::clone(&store);
        async move {
            store
                .consume_form_token(hash, browser, purpose, now)
                .await
                .unwrap()
        }
    };
    assert!(!consume("f-1", "browser-2", "login", NOW).await);
    assert!(!consume("f-1", "browser-1", "consent", NOW).await);
    assert!(consume("f-1", "browser-1", "login", NOW).await);
    assert!(!consume("f-1", "browser-1", "login", NOW).await);
    assert!(!consume("f-2", "browser-1", "login", NOW + 60).await); // expired
}

async fn signing_keys_rotate(store: Arc<dyn Store>, _other: Arc<dyn Store>) {
    let key = |kid, state, activate_at| NewKey {
        kid,
        alg: "ES256",
        private_key: b"der",
        public_jwk: r#"{"kty":"EC"}"#,
        state,
        activate_at,
        now: NOW,
    };
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.active_key().await.unwrap(), None);
    tx.insert_key(&key("k-1", "active", None)).await.unwrap();
    tx.insert_key(&key("k-2", "published", Some(NOW + 10)))
        .await
        .unwrap();
    assert_eq!(tx.active_key().await.unwrap().as_deref(), Some("k-1"));
    // a standing key of another algorithm: usable, never due, never retired
    assert_eq!(tx.usable_key("RS256").await.unwrap(), None);
    tx.insert_key(&NewKey {
        alg: "RS256",
        ..key("k-rsa", "published", None)
    })
    .await
    .unwrap();
    assert_eq!(
        tx.usable_key("RS256").await.unwrap().as_deref(),
        Some("k-rsa")
    );
    assert_eq!(
        tx.usable_key("ES256").await.unwrap().as_deref(),
        Some("k-1")
    );
    assert_eq!(tx.key_due(NOW + 9).await.unwrap(), None);
    assert_eq!(tx.key_due(NOW + 10).await.unwrap().as_deref(), Some("k-2"));
    tx.activate_key("k-2", NOW + 100).await.unwrap();
    tx.commit().await.unwrap();

    let keys = store.signing_keys().await.unwrap();
    let states: Vec<(&str, bool, bool)> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.active, k.standing))
        .collect();
    assert_eq!(
        states,
        [
            ("k-1", false, false),
            ("k-2", true, false),
            ("k-rsa", false, true)
        ]
    );
    assert_eq!(keys[1].private_key, b"der");

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.key_due(NOW + 50).await.unwrap(), None);
    tx.retire_keys(NOW + 99).await.unwrap();
    assert_eq!(store_kids(&*store).await.len(), 3);
    tx.retire_keys(NOW + 100).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store_kids(&*store).await, ["k-2", "k-rsa"]);
}

async fn store_kids(store: &dyn Store) -> Vec<String> {
    let keys = store.signing_keys().await.unwrap();
    keys.into_iter().map(|k| k.kid).collect()
}

async fn issued_tokens_are_recorded(store: Arc<dyn Store>, _other: Arc<dyn Store>) {
    let claims = IssuedToken {
        jti: "j-rec",
        client_id: "web",
        sub: "alice",
        sid: None,
        scope: "api:read",
        issued_at: NOW,
        exp: NOW + 60,
    };
    let mut tx = store.begin().await.unwrap();
    tx.record_issued(&claims).await.unwrap();
    // a jti is unique: a second record of the same token is refused
    assert!(tx.record_issued(&claims).await.is_err());
}

/// Two stores on one new PostgreSQL database (`None`: PostgreSQL tests switched off).
async fn postgres_pair() -> Option<(Arc<dyn Store>, Arc<dyn Store>)> {
    let url = pg_cluster::database("contract")?;
    // opened together: both migrate the new database at once
    let (a, b) = tokio::join!(idp::store::open(&url), idp::store::open(&url));
    Some((a.unwrap(), b.unwrap()))
}

macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let (_dir, store) = super::sqlite().await;
                    super::$check(Arc::clone(&store), store).await;
                }
            )*
            use std::sync::Arc;
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some((a, b)) = super::postgres_pair().await else { return };
                    super::$check(a, b).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_dropped_transaction_leaves_nothing,
    a_code_is_used_once,
    a_refused_redemption_keeps_the_code,
    concurrent_redemptions_have_one_winner,
    a_refresh_token_is_used_once_and_dies_with_its_session,
    the_feed_is_ordered_and_its_cursor_never_goes_back,
    sso_sessions_end_with_their_token_sessions,
    consent_is_per_user_and_client,
    a_form_token_is_consumed_once_by_its_browser,
    signing_keys_rotate,
    issued_tokens_are_recorded,
    dpop_bindings_are_kept_with_codes_and_refresh_tokens,
    a_dpop_jti_is_accepted_once_until_it_expires,
    login_failures_are_kept_per_user_and_address,
    a_committed_revocation_wakes_the_signal,
    across_replicas_the_feed_cursor_never_skips_an_uncommitted_entry,
    across_replicas_concurrent_login_failures_all_count,
    across_replicas_a_code_is_used_once,
    across_replicas_a_refresh_token_is_used_once,
    across_replicas_keys_are_created_once,
    across_replicas_revocations_wake_the_other_replica,
    cutoffs_join_the_feed_and_only_a_later_one_replaces_them,
    a_cutoff_wakes_every_replica,
    a_logout_jti_is_accepted_once_per_issuer_until_it_expires,
);

#[path = "store_contract/replicas.rs"]
mod replicas;
use replicas::*;
#[path = "store_contract/dpop.rs"]
mod dpop;
use dpop::*;
#[path = "store_contract/cutoffs.rs"]
mod cutoffs;
use cutoffs::*;
