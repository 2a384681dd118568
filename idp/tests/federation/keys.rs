//! An upstream's keys at the hub: from its JWKS or its discovery document (whose issuer must
//! match); the last good set is kept when a fetch fails, and a token naming an unknown key makes
//! the hub fetch again, at most once per 10 s per issuer.

use super::*;
use idp::federation::{Hub, MIN_REFETCH_INTERVAL};
use std::time::Duration;

fn federation(op: &Op) -> idp::settings::Federation {
    idp::settings::RawSettings::from_toml(&hub_config(op, &jwks_uri(op)))
        .unwrap()
        .validate(&Default::default())
        .unwrap()
        .federation
}

#[tokio::test]
async fn the_last_good_keys_are_kept_when_a_fetch_fails() {
    let op = Op::start(None).await;
    let hub = Hub::new(&federation(&op));
    assert!(hub.keys(&op.issuer).is_empty());
    assert!(hub.refresh(&op.issuer, Duration::ZERO).await);
    assert_eq!(hub.keys(&op.issuer).keys.len(), 2);
    for broken in [Value::Null, json!({"keys": "no"}), json!({"keys": []})] {
        *op.jwks.lock().unwrap() = broken.clone();
        assert!(!hub.refresh(&op.issuer, Duration::ZERO).await, "{broken}");
        assert_eq!(hub.keys(&op.issuer).keys.len(), 2, "{broken}");
    }
    // Not federated: nothing to fetch.
    assert!(!hub.refresh("http://127.0.0.1:1", Duration::ZERO).await);
    assert!(hub.keys("http://127.0.0.1:1").is_empty());
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_every_ten_seconds() {
    let op = Op::start(None).await;
    let (_dir, app) = hub(&op, &jwks_uri(&op)).await;
    let r = post_logout(&app, &op.es256(&op.claims(json!({})))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(op.fetches.load(Ordering::SeqCst), 1);
    // The provider rotates to a new key.
    let rotated = Issuer::es256(6, "op-es-2");
    *op.jwks.lock().unwrap() = json!({"keys": [op.es.jwk(), rotated.jwk()]});
    let header = json!({"alg": "ES256", "typ": "logout+jwt", "kid": "op-es-2"});
    let token = rotated.sign(&header, &op.claims(json!({"sid": "after-rotation"})));
    // Within the interval: no fetch, the kid is unknown.
    let r = post_logout(&app, &token).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json["error_description"],
        "no key for the logout token's kid and alg"
    );
    // A flood of made-up kids costs the provider nothing more.
    for i in 0..20 {
        let h = json!({"alg": "ES256", "typ": "logout+jwt", "kid": format!("made-up-{i}")});
        let r = post_logout(&app, &rotated.sign(&h, &op.claims(json!({})))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(op.fetches.load(Ordering::SeqCst), 1);
    // After it: one fetch, and the new key's token is accepted.
    tokio::time::sleep(MIN_REFETCH_INTERVAL + Duration::from_millis(200)).await;
    let token = rotated.sign(&header, &op.claims(json!({"sid": "after-rotation"})));
    let r = post_logout(&app, &token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(op.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn keys_come_from_discovery_whose_issuer_must_match() {
    let op = Op::start(None).await;
    let (_dir, app) = hub(&op, "discovery = true").await;
    let r = post_logout(&app, &op.rs256(&op.claims(json!({})))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);

    let liar = Op::start(Some("http://127.0.0.1:9")).await;
    let (_dir2, app) = hub(&liar, "discovery = true").await;
    let r = post_logout(&app, &liar.es256(&liar.claims(json!({})))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json["error_description"],
        "no keys for the logout token's issuer"
    );
    assert_eq!(feed(&app, None).await["revoked"], json!([]));
}
