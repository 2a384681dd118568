//! DPoP (RFC 9449) in the store: proof `jti`s recorded once across replicas, and the key a code
//! or refresh token is bound to.

use super::{NOW, code, refresh, session};
use idp::store::{CodeUse, NewRefreshToken, Store};
use std::sync::Arc;

pub async fn dpop_bindings_are_kept_with_codes_and_refresh_tokens(
    store: Arc<dyn Store>,
    _: Arc<dyn Store>,
) {
    store.insert_code(&code(b"c-dpop")).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let CodeUse::First(stored) = tx.use_code(b"c-dpop", NOW).await.unwrap() else {
        panic!("first use");
    };
    assert_eq!(stored.dpop_jkt.as_deref(), Some("jkt-code"));
    tx.create_session(&session("s-dpop", None)).await.unwrap();
    tx.insert_refresh_token(&NewRefreshToken {
        dpop_jkt: Some("jkt-refresh"),
        ..refresh(b"r-bound", "s-dpop")
    })
    .await
    .unwrap();
    tx.insert_refresh_token(&refresh(b"r-free", "s-dpop"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let bound = tx.find_refresh_token(b"r-bound").await.unwrap().unwrap();
    assert_eq!(bound.dpop_jkt.as_deref(), Some("jkt-refresh"));
    let free = tx.find_refresh_token(b"r-free").await.unwrap().unwrap();
    assert_eq!(free.dpop_jkt, None);
}

/// One replica's record is seen by the other (a proof replayed to another replica is refused).
pub async fn a_dpop_jti_is_accepted_once_until_it_expires(
    store: Arc<dyn Store>,
    other: Arc<dyn Store>,
) {
    assert!(store.record_dpop_jti("p-1", NOW + 60, NOW).await.unwrap());
    assert!(!other.record_dpop_jti("p-1", NOW + 60, NOW).await.unwrap());
    assert!(
        !store
            .record_dpop_jti("p-1", NOW + 90, NOW + 59)
            .await
            .unwrap()
    );
    assert!(store.record_dpop_jti("p-2", NOW + 60, NOW).await.unwrap());
    // once expired (not purged yet) it may be recorded again, and is then live again
    assert!(
        store
            .record_dpop_jti("p-1", NOW + 120, NOW + 60)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_dpop_jti("p-1", NOW + 120, NOW + 61)
            .await
            .unwrap()
    );
    store.purge_expired(NOW + 120).await.unwrap();
    assert!(
        store
            .record_dpop_jti("p-1", NOW + 180, NOW + 120)
            .await
            .unwrap()
    );
    // concurrent first uses: exactly one wins
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .record_dpop_jti("p-race", NOW + 60, NOW)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}
