//! The hub on PostgreSQL, two replicas on one database: a logout token posted to one replica is
//! on the other's feed (and wakes its long poll), and replayed to the other it is refused; a
//! database outage is a 503 that stores nothing.

use super::*;

#[path = "../pg_cluster/mod.rs"]
mod pg_cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_replicas_share_cutoffs_and_the_replay_store() {
    let Some(url) = pg_cluster::database("federation") else {
        return;
    };
    let op = Op::start(None).await;
    let config = hub_config(&op, &jwks_uri(&op));
    let (a, b) = tokio::join!(
        common::state_on_url(&url, &config),
        common::state_on_url(&url, &config)
    );
    let (a, b) = (idp::app(a), idp::app(b));
    let cursor = feed(&b, None).await["cursor"].as_i64().unwrap();
    let poll = {
        let b = b.clone();
        tokio::spawn(async move {
            send(
                &b,
                Request::get(format!("/oauth2/revocations?since={cursor}&wait=20"))
                    .header(header::AUTHORIZATION, basic(GATEWAY_A))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .json
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let claims = op.claims(json!({"sid": "pg-sid"}));
    let token = op.rs256(&claims);
    let r = post_logout(&a, &token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let iat = claims["iat"].as_i64().unwrap();
    let woken = tokio::time::timeout(std::time::Duration::from_secs(15), poll)
        .await
        .expect("the other replica's long poll was not woken")
        .unwrap();
    assert_eq!(
        woken["revoked"],
        json!([{"iss": op.issuer, "sid": "pg-sid", "cutoff": iat, "exp": iat + LIFETIME}])
    );
    let replayed = post_logout(&b, &token).await;
    assert_eq!(replayed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        replayed.json["error_description"],
        "the logout token was received before"
    );
    let report = json!({"iss": op.issuer, "sub": "pg-sub", "cutoff": iat}).to_string();
    assert_eq!(
        send(&b, super::report(GATEWAY_A, &report)).await.status,
        StatusCode::OK
    );
    let all = feed(&a, None).await["revoked"].clone();
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
}

/// A database outage: a logout token and a cut-off report are answered 503 with `Retry-After`
/// (the provider retries), nothing is half-stored (the token's `jti` was not burned), and once
/// the database is back the same token is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_is_a_503_and_the_retry_is_accepted() {
    let Some(_) = pg_cluster::cluster() else {
        return;
    };
    // a cluster of its own: this test stops it
    let mut cluster = test_support::postgres::PostgresCluster::start().unwrap();
    let url = cluster.create_database("outage").unwrap();
    let op = Op::start(None).await;
    let app = idp::app(common::state_on_url(&url, &hub_config(&op, &jwks_uri(&op))).await);
    // The keys are fetched before the outage (the first token).
    let first = op.es256(&op.claims(json!({"sid": "before"})));
    assert_eq!(post_logout(&app, &first).await.status, StatusCode::OK);

    tokio::task::block_in_place(|| cluster.stop());
    let token = op.es256(&op.claims(json!({"sid": "during"})));
    let r = post_logout(&app, &token).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
    assert_eq!(r.json["error"], "temporarily_unavailable");
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    let report = json!({"iss": op.issuer, "sid": "reported", "cutoff": now()}).to_string();
    let r = send(&app, super::report(GATEWAY_A, &report)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);

    tokio::task::block_in_place(|| cluster.restart()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = post_logout(&app, &token).await;
        if r.status == StatusCode::OK {
            break;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
        assert!(std::time::Instant::now() < deadline, "no recovery");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let sids: Vec<Value> = feed(&app, None).await["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sid"].clone())
        .collect();
    assert_eq!(sids, [json!("before"), json!("during")]);
}
