//! The IDP as an OpenID Connect Back-Channel Logout 1.0 sender: a client with a registered
//! `backchannel_logout_uri` gets a logout token (`typ: logout+jwt`, `aud` = its id, `sid`,
//! `sub`, `exp`, the event, no `nonce`) POSTed as a form when its session ends, checked against
//! the IDP's JWKS; a client whose endpoint does not answer does not slow the logout, and the
//! failed attempts are retried, bounded, and counted. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
#[path = "pg_cluster/mod.rs"]
mod pg_cluster;
mod ssf_support;

use axum::Router;
use axum::http::StatusCode;
use serde_json::json;
use ssf_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

async fn delivered_to_the_client(state: Arc<idp::AppState>, app: Router, mut rcv: Receiver) {
    idp::http::routes::ssf::spawn_event_delivery(&state);
    let (at, sid) = user_session(&app).await;
    let sub = payload(&at)["sub"].clone();
    assert_eq!(revoke(&app, &at).await.status, StatusCode::OK);
    let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rcv.got.recv())
        .await
        .expect("no logout token arrived")
        .unwrap();
    assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form.len(), 1);
    assert_eq!(form[0].0, "logout_token");
    let claims = verified(&app, &form[0].1, "logout+jwt", USER_APP.0).await;
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["sub"], sub);
    assert_eq!(claims["events"], json!({EVENT: {}}));
    assert!(claims.get("nonce").is_none());
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 120);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    // one session, one token: nothing more arrives
    assert!(
        tokio::time::timeout(Duration::from_millis(700), rcv.got.recv())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_session_end_posts_a_logout_token_on_sqlite() {
    let rcv = receiver("/bcl", 1, StatusCode::OK).await;
    let dir = tempfile::tempdir().unwrap();
    let state =
        common::state_with(&dir.path().join("idp.sqlite"), &config(Some(&rcv.url), "")).await;
    let app = idp::app(Arc::clone(&state));
    delivered_to_the_client(state, app, rcv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_session_end_posts_a_logout_token_on_postgresql() {
    let Some(url) = pg_cluster::database("bcl") else {
        return;
    };
    let rcv = receiver("/bcl", 0, StatusCode::NO_CONTENT).await;
    let state = common::state_on_url(&url, &config(Some(&rcv.url), "")).await;
    let app = idp::app(Arc::clone(&state));
    delivered_to_the_client(state, app, rcv).await;
}

/// An endpoint that accepts connections and never answers.
async fn silent_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (format!("http://{addr}/bcl"), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_endpoint_hangs_does_not_slow_the_logout() {
    let (url, task) = silent_endpoint().await;
    let dir = tempfile::tempdir().unwrap();
    let state = common::state_with(&dir.path().join("idp.sqlite"), &config(Some(&url), "")).await;
    let app = idp::app(Arc::clone(&state));
    idp::http::routes::ssf::spawn_event_delivery(&state);
    // a first logout, so the delivery loops are busy with a hanging attempt
    let (first, _) = user_session(&app).await;
    assert_eq!(revoke(&app, &first).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let (at, _) = user_session(&app).await;
        let t = Instant::now();
        assert_eq!(revoke(&app, &at).await.status, StatusCode::OK);
        worst = worst.max(t.elapsed());
    }
    // The attempt timeout is 400 ms: a logout waiting for the RP would take at least that.
    // (A loaded 2-core machine: the bound leaves room for it, yet stays below the timeout.)
    assert!(worst < Duration::from_millis(350), "logout took {worst:?}");
    // the attempts time out, are retried (3 in all), then dropped and counted
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = metrics(&app).await;
        if text.contains(
            "idp_event_deliveries_total{channel=\"backchannel_logout\",outcome=\"dropped\"} 6",
        ) {
            assert!(text.contains("idp_event_deliveries_total{channel=\"backchannel_logout\",outcome=\"retry\"} 12"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    task.abort();
}
