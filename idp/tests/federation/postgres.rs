//! The hub on PostgreSQL, two replicas on one database: a logout token posted to one replica is
//! on the other's feed (and wakes its long poll), and replayed to the other it is refused.

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
