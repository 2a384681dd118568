//! Federation in the store: cut-offs in the revocation feed (one cursor with revocations; a later
//! cut-off moves to the end, an earlier one changes nothing; purged when expired; a wake-up on
//! every replica) and the back-channel logout token replay store.

use super::NOW;
use idp::store::{CutoffKey, NewCutoff, Store};
use std::sync::Arc;
use std::time::Duration;

fn cutoff<'a>(iss: &'a str, key: CutoffKey, value: &'a str, t: i64) -> NewCutoff<'a> {
    NewCutoff {
        iss,
        key,
        value,
        cutoff: t,
        exp: t + 3600,
        now: NOW,
    }
}

/// `(kind, iss, value, cutoff, exp)` of every live entry after `since`, and the cursor.
async fn feed(
    store: &dyn Store,
    since: Option<i64>,
) -> (Vec<(String, Option<String>, String, Option<i64>, i64)>, i64) {
    let (entries, cursor) = store.revocations_since(since, NOW, 100).await.unwrap();
    let entries = entries
        .into_iter()
        .map(|e| (e.kind, e.iss, e.value, e.cutoff, e.exp))
        .collect();
    (entries, cursor)
}

pub async fn cutoffs_join_the_feed_and_only_a_later_one_replaces_them(
    store: Arc<dyn Store>,
    other: Arc<dyn Store>,
) {
    let op = "https://op.example";
    let mut tx = store.begin().await.unwrap();
    tx.revoke_jti("j-own", NOW + 60, NOW).await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        store
            .record_cutoff(&cutoff(op, CutoffKey::Sid, "s-1", NOW - 10))
            .await
            .unwrap()
    );
    // Same value as a subject and under another issuer: three distinct entries.
    assert!(
        store
            .record_cutoff(&cutoff(op, CutoffKey::Sub, "s-1", NOW - 10))
            .await
            .unwrap()
    );
    assert!(
        other
            .record_cutoff(&cutoff("https://other.example", CutoffKey::Sid, "s-1", NOW))
            .await
            .unwrap()
    );
    let (entries, cursor) = feed(&*other, None).await;
    assert_eq!(
        entries,
        [
            ("jti".into(), None, "j-own".into(), None, NOW + 60),
            (
                "sid_cutoff".into(),
                Some(op.into()),
                "s-1".into(),
                Some(NOW - 10),
                NOW + 3590
            ),
            (
                "sub_cutoff".into(),
                Some(op.into()),
                "s-1".into(),
                Some(NOW - 10),
                NOW + 3590
            ),
            (
                "sid_cutoff".into(),
                Some("https://other.example".into()),
                "s-1".into(),
                Some(NOW),
                NOW + 3600
            ),
        ]
    );
    // An equal or earlier cut-off: nothing new after the cursor.
    for t in [NOW - 10, NOW - 100] {
        assert!(
            !store
                .record_cutoff(&cutoff(op, CutoffKey::Sid, "s-1", t))
                .await
                .unwrap()
        );
    }
    // (On PostgreSQL the refused ones took numbers: the cursor may step over those gaps.)
    let (nothing, cursor) = {
        let (entries, next) = feed(&*store, Some(cursor)).await;
        assert!(next >= cursor);
        (entries, next)
    };
    assert_eq!(nothing, vec![]);
    // A later one: read again after the cursor, with its own time and expiry, and only once.
    assert!(
        other
            .record_cutoff(&cutoff(op, CutoffKey::Sid, "s-1", NOW + 5))
            .await
            .unwrap()
    );
    let (after, next) = feed(&*store, Some(cursor)).await;
    assert_eq!(
        after,
        [(
            "sid_cutoff".into(),
            Some(op.into()),
            "s-1".into(),
            Some(NOW + 5),
            NOW + 3605
        )]
    );
    assert!(next > cursor);
    assert_eq!(feed(&*store, None).await.0.len(), 4);
    // A dropped transaction records nothing.
    let mut tx = store.begin().await.unwrap();
    tx.record_cutoff(&cutoff(op, CutoffKey::Sub, "bob", NOW))
        .await
        .unwrap();
    drop(tx);
    assert_eq!(feed(&*store, Some(next)).await.0, vec![]);
    // Expired cut-offs are not served, and are purged; the cursor never goes back.
    store.purge_expired(NOW + 3601).await.unwrap();
    let (live, last) = store
        .revocations_since(None, NOW + 3601, 100)
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].cutoff, Some(NOW + 5));
    assert!(last >= next);
    store.purge_expired(NOW + 3606).await.unwrap();
    let (none, end) = store.revocations_since(None, NOW, 100).await.unwrap();
    assert!(none.is_empty());
    assert!(end >= next);
}

pub async fn a_cutoff_wakes_every_replica(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    for round in 0..3 {
        let mut woken = b.revocation_signal().subscribe();
        let sid = format!("s-wake-{round}");
        a.record_cutoff(&cutoff("https://op.example", CutoffKey::Sid, &sid, NOW))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), woken.changed())
            .await
            .expect("no wake-up after a committed cut-off")
            .unwrap();
    }
    // Nothing written (an earlier cut-off): no new entry, whatever the wake-ups.
    let (_, cursor) = b.revocations_since(None, NOW, 100).await.unwrap();
    a.record_cutoff(&cutoff(
        "https://op.example",
        CutoffKey::Sid,
        "s-wake-0",
        NOW - 1,
    ))
    .await
    .unwrap();
    let (after, _) = b.revocations_since(Some(cursor), NOW, 100).await.unwrap();
    assert!(after.is_empty());
}

pub async fn a_logout_jti_is_accepted_once_per_issuer_until_it_expires(
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
) {
    let record = |store: Arc<dyn Store>, iss: &'static str, jti: &'static str, now: i64| async move {
        let mut tx = store.begin().await.unwrap();
        let first = tx
            .record_logout_jti(iss, jti, NOW + 120, now)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        first
    };
    assert!(record(Arc::clone(&a), "https://op.example", "j-1", NOW).await);
    assert!(!record(Arc::clone(&b), "https://op.example", "j-1", NOW).await);
    assert!(record(Arc::clone(&b), "https://other.example", "j-1", NOW).await);
    // A rolled-back record is no record.
    let mut tx = a.begin().await.unwrap();
    assert!(
        tx.record_logout_jti("https://op.example", "j-2", NOW + 120, NOW)
            .await
            .unwrap()
    );
    drop(tx);
    assert!(record(Arc::clone(&b), "https://op.example", "j-2", NOW).await);
    // Expired: taken over; purged.
    assert!(record(Arc::clone(&a), "https://op.example", "j-1", NOW + 120).await);
    a.purge_expired(NOW + 10_000).await.unwrap();
    assert!(record(b, "https://op.example", "j-2", NOW + 10_000).await);
}
