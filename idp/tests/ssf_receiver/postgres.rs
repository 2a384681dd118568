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

/// Two hub replicas on one database receive the same SET at once (a transmitter retrying on
/// another replica): both answer 202, the cut-off is stored once; another SET reusing its `jti`
/// is refused by either. The second replica may still be setting its stream up when the SET
/// arrives (503 until it has the transmitter's keys; a SET arriving while they are fetched is
/// checked against them, see `key_loading`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgresql_two_replicas_store_a_set_once() {
    let Some(url) = pg_cluster::database("ssf_replicas") else {
        return;
    };
    let tx = Transmitter::start(AUD, None).await;
    let mut bases = Vec::new();
    let mut hubs = Vec::new();
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let delivery = format!(
            "delivery = \"push\"\npush_url = \"{base}/ssf/push/tx\"\npush_authorization = \"{PUSH_AUTH}\"\n{}",
            bearer()
        );
        hubs.push(start_hub(&tx, &delivery, Some(&url), Some(listener)).await);
        bases.push(base);
    }
    assert!(
        tx.until(Duration::from_secs(10), |t| t.stream().is_some())
            .await
    );
    let at = now() - 1;
    let set = session_revoked(&tx, "pg-replicas", at);
    let urls: Vec<String> = bases.iter().map(|b| format!("{b}/ssf/push/tx")).collect();
    let (a, b) = tokio::join!(push_to(&urls[0], &set), push_to(&urls[1], &set));
    assert_eq!((a.0, b.0), (202, 202), "{a:?} {b:?}");
    assert_eq!(
        feed(&hubs[1].app).await,
        json!([{"iss": OP, "sid": "pg-replicas", "cutoff": at, "exp": at + LIFETIME}])
    );
    let reused = tx.es256(&tx.claims(
        session_subject("pg-other", "alice"),
        json!({SESSION_REVOKED: {}}),
        json!({"jti": ssf_transmitter::jti_of(&set)}),
    ));
    let (status, body) = ssf_transmitter::http_post(
        &format!("{}/ssf/push/tx", bases[1]),
        PUSH_AUTH,
        "application/secevent+jwt",
        reused.into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["description"], "the SET's jti was used by another SET");
}

/// Pushes `set` as a transmitter does: delivered again while the hub answers 503 (a replica
/// still reading the transmitter's keys), for 10 s at most.
pub(super) async fn push_to(url: &str, set: &str) -> (u16, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = ssf_transmitter::http_post(
            url,
            PUSH_AUTH,
            "application/secevent+jwt",
            set.as_bytes().to_vec(),
        )
        .await;
        if answer.0 != 503 || tokio::time::Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
