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
#[allow(dead_code)]
#[path = "browser_flow/support.rs"]
mod support;

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
    let t = Instant::now();
    assert_eq!(revoke(&app, &at).await.status, StatusCode::OK);
    let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rcv.got.recv())
        .await
        .expect("no logout token arrived")
        .unwrap();
    println!("logout to logout token received: {:?}", t.elapsed());
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
    // each attempt waits up to 3 s for the RP, 2 attempts per token
    let cfg = config(Some(&url), "").replace(
        "[backchannel_logout]\nmax_attempts = 3\nfirst_retry_ms = 100\nmax_retry_ms = 200\ntimeout_ms = 400",
        "[backchannel_logout]\nmax_attempts = 2\nfirst_retry_ms = 100\nmax_retry_ms = 200\ntimeout_ms = 3000",
    );
    assert!(cfg.contains("timeout_ms = 3000"));
    let state = common::state_with(&dir.path().join("idp.sqlite"), &cfg).await;
    let app = idp::app(Arc::clone(&state));
    idp::http::routes::ssf::spawn_event_delivery(&state);
    // a first logout, so the delivery loops are busy with a hanging attempt
    let (first, _) = user_session(&app).await;
    assert_eq!(revoke(&app, &first).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut times = Vec::new();
    for _ in 0..5 {
        let (at, _) = user_session(&app).await;
        let t = Instant::now();
        assert_eq!(revoke(&app, &at).await.status, StatusCode::OK);
        times.push(t.elapsed());
    }
    let worst = times.iter().max().copied().unwrap_or_default();
    println!("logout (RFC 7009 revocation ending the session) with the RP hanging: {times:?}");
    // A logout that waited for the RP would take the attempt's 3 s; the bound leaves a loaded
    // 2-core machine room and stays far below it.
    assert!(worst < Duration::from_millis(1500), "logout took {worst:?}");
    // the attempts time out, are retried once, then dropped and counted
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics(&app).await;
        if text.contains(
            "idp_event_deliveries_total{channel=\"backchannel_logout\",outcome=\"dropped\"} 6",
        ) {
            assert!(
                text.contains(
                    "idp_event_deliveries_total{channel=\"backchannel_logout\",outcome=\"retry\"} 6"
                ),
                "{text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    task.abort();
}

/// An administrator's `idp end-sessions --sub` (run as its own process would: its own store on
/// the same database) ends every session of the user; the running server sends each session's
/// logout token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_ending_a_users_sessions_sends_their_logout_tokens() {
    let mut rcv = receiver("/bcl", 0, StatusCode::OK).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("idp.sqlite");
    let cfg = config(Some(&rcv.url), "");
    let state = common::state_with(&db, &cfg).await;
    let app = idp::app(Arc::clone(&state));
    idp::http::routes::ssf::spawn_event_delivery(&state);
    let (at1, sid1) = user_session(&app).await;
    let (_, sid2) = user_session(&app).await;
    let sub = payload(&at1)["sub"].as_str().unwrap().to_owned();
    let settings = state.settings.clone();
    let n = idp::cli::end_sessions::end_sessions(
        &settings,
        idp::cli::end_sessions::Which::Subject(&sub),
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    let mut sids = Vec::new();
    for _ in 0..2 {
        let (_, body) = tokio::time::timeout(Duration::from_secs(10), rcv.got.recv())
            .await
            .expect("a logout token per ended session")
            .unwrap();
        let token = body.strip_prefix("logout_token=").unwrap();
        let claims = verified(&app, token, "logout+jwt", USER_APP.0).await;
        assert_eq!(claims["sub"], sub.as_str());
        sids.push(claims["sid"].as_str().unwrap().to_owned());
    }
    sids.sort();
    let mut want = vec![sid1, sid2];
    want.sort();
    assert_eq!(sids, want);
    // none is live any more
    assert_eq!(
        idp::cli::end_sessions::end_sessions(
            &settings,
            idp::cli::end_sessions::Which::Subject(&sub)
        )
        .await
        .unwrap(),
        0
    );
}

/// A browser of the browser-flow tests whose `web-app` registered `uri` for back-channel logout.
async fn browser_with_logout_uri(
    dir: &std::path::Path,
    uri: &str,
) -> (Arc<idp::AppState>, support::Browser) {
    let signed_out = format!("post_logout_redirect_uris = [\"{}\"]", support::SIGNED_OUT);
    let cfg = support::config().replacen(
        &signed_out,
        &format!("{signed_out}\nbackchannel_logout_uri = \"{uri}\""),
        1,
    );
    let state = common::state_with(&dir.join("db.sqlite"), &cfg).await;
    idp::http::routes::ssf::spawn_event_delivery(&state);
    let b = support::Browser {
        app: idp::app(Arc::clone(&state)),
        jar: Default::default(),
        form_token: None,
    };
    (state, b)
}

async fn logout_token_of(rcv: &mut Receiver, app: &Router) -> serde_json::Value {
    let (_, body) = tokio::time::timeout(Duration::from_secs(10), rcv.got.recv())
        .await
        .expect("no logout token arrived")
        .unwrap();
    let token = body.strip_prefix("logout_token=").unwrap();
    verified(app, token, "logout+jwt", support::WEB.0).await
}

/// RP-initiated logout (OIDC RP-Initiated Logout 1.0) ends the browser's session: the client
/// gets a logout token naming the session its ID token named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_initiated_logout_sends_the_clients_logout_token() {
    let mut rcv = receiver("/bcl", 0, StatusCode::OK).await;
    let dir = tempfile::tempdir().unwrap();
    let (_state, mut b) = browser_with_logout_uri(dir.path(), &rcv.url).await;
    let tokens = support::full_login(&mut b).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let id_claims = payload(id_token);
    let page = b
        .get(&format!("/oauth2/logout?id_token_hint={id_token}"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let app = b.app.clone();
    let claims = logout_token_of(&mut rcv, &app).await;
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert_eq!(claims["aud"], support::WEB.0);
}

/// A replayed authorization code ends the session its tokens went to (RFC 6749 §4.1.2): the
/// client gets that session's logout token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_code_sends_the_sessions_logout_token() {
    let mut rcv = receiver("/bcl", 0, StatusCode::OK).await;
    let dir = tempfile::tempdir().unwrap();
    let (_state, mut b) = browser_with_logout_uri(dir.path(), &rcv.url).await;
    let request = support::web_request("");
    b.get(&format!("/oauth2/authorise?{request}")).await;
    support::sign_in(&mut b, &request, "alice", "alice-password-123").await;
    let page = b
        .post(
            "/oauth2/authorise",
            &format!("{request}&csrf={}&consent=allow", b.csrf()),
        )
        .await;
    let code = support::query_of(page.location.as_deref().unwrap())["code"].clone();
    let first = support::exchange(&b, &code).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json);
    let sid = payload(first.json["access_token"].as_str().unwrap())["sid"].clone();
    let replay = support::exchange(&b, &code).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    let app = b.app.clone();
    let claims = logout_token_of(&mut rcv, &app).await;
    assert_eq!(claims["sid"], sid);
}
