//! The receiver on PostgreSQL: push and poll store their cut-offs and `jti` records there (a
//! redelivery changes nothing, a reused `jti` is refused).

use super::*;

#[path = "../pg_cluster/mod.rs"]
mod pg_cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_pushed_and_polled_sets_become_cutoffs() {
    let Some(url) = pg_cluster::database("ssf_push") else {
        return;
    };
    let tx = Transmitter::start(AUD, None).await;
    let hub = push_hub(&tx, Some(&url)).await;
    let at = now() - 2;
    let set = session_revoked(&tx, "pg-push", at);
    assert_eq!(tx.push(&set).await.0, 202);
    assert_eq!(tx.push(&set).await.0, 202);
    let reused = tx.es256(&tx.claims(
        session_subject("pg-other", "alice"),
        json!({SESSION_REVOKED: {}}),
        json!({"jti": ssf_transmitter::jti_of(&set)}),
    ));
    assert_eq!(tx.push(&reused).await.0, 400);
    assert_eq!(
        feed(&hub.app).await,
        json!([{"iss": OP, "sid": "pg-push", "cutoff": at, "exp": at + LIFETIME}])
    );

    let url = pg_cluster::database("ssf_poll").unwrap();
    let tx = Transmitter::start(AUD, None).await;
    let hub = start_hub(
        &tx,
        &format!("delivery = \"poll\"\n{}", bearer()),
        Some(&url),
        None,
    )
    .await;
    sets_up(&tx).await;
    let jti = tx.queue(&session_revoked(&tx, "pg-poll", at));
    assert!(
        tx.until(Duration::from_secs(10), |t| t.acks().contains(&jti))
            .await
    );
    assert_eq!(feed(&hub.app).await[0]["sid"], "pg-poll");
}
