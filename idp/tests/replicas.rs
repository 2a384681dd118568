//! Several IDP replicas on one PostgreSQL database, driven through their routers: the long-polled
//! revocation feed wakes on another replica's revocation, refresh races end the family, login
//! budgets are shared, and a database outage is answered 503 and recovered from. The long poll
//! is also checked on SQLite (one process).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
mod pg_cluster;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use std::time::{Duration, Instant};

/// Long enough for anything that works; reaching it fails the test (no speed is asserted).
const PATIENCE: Duration = Duration::from_secs(15);

/// Two replicas (started together) on a new PostgreSQL database.
async fn two_replicas(config: &str) -> Option<(Router, Router, String)> {
    let url = pg_cluster::database("replicas")?;
    let (a, b) = tokio::join!(state_on_url(&url, config), state_on_url(&url, config));
    assert_eq!(
        a.keys().active_kid,
        b.keys().active_kid,
        "replicas starting together made two keys"
    );
    Some((idp::app(a), idp::app(b), url))
}

fn feed_request(query: &str) -> Request<Body> {
    Request::get(format!("/oauth2/revocations{query}"))
        .header(header::AUTHORIZATION, basic(GATEWAY))
        .body(Body::empty())
        .unwrap()
}

async fn cursor(app: &Router) -> i64 {
    let r = send(app, feed_request("")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["cursor"].as_i64().unwrap()
}

async fn revoke(app: &Router, token: &str) {
    let r = send(
        app,
        form(
            "/oauth2/revoke",
            Some(basic(DEMO)),
            &format!("token={token}"),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

fn jti(token: &str) -> String {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

/// A long poll on `waiter` while `revoker` revokes a token: the poll answers with the entry.
async fn long_poll_wakes_on_revocation(waiter: &Router, revoker: &Router) {
    let token = token(revoker, None).await;
    let since = cursor(waiter).await;
    let poll = tokio::spawn({
        let waiter = waiter.clone();
        async move {
            let started = Instant::now();
            let r = send(&waiter, feed_request(&format!("?since={since}&wait=25"))).await;
            (r, started.elapsed())
        }
    });
    // let the poll reach its wait (it must not answer before there is something to answer)
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the long poll answered with nothing");
    let revoked_at = Instant::now();
    revoke(revoker, &token).await;
    let (r, held) = tokio::time::timeout(PATIENCE, poll).await.unwrap().unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let entries = r.json["revoked"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["jti"] == jti(&token).as_str()),
        "woke without the entry (a timeout?): {}",
        r.json
    );
    assert!(r.json["cursor"].as_i64().unwrap() > since);
    println!(
        "long poll held {held:?}, answered {:?} after the revocation",
        revoked_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_poll_on_one_replica_wakes_when_another_revokes() {
    let Some((a, b, _)) = two_replicas(&config()).await else {
        return;
    };
    long_poll_wakes_on_revocation(&b, &a).await;
    long_poll_wakes_on_revocation(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_poll_on_sqlite_wakes_on_a_revocation_and_times_out_empty() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    long_poll_wakes_on_revocation(&app, &app).await;

    // nothing revoked: answered after `wait` with no entries and the same cursor
    let since = cursor(&app).await;
    let r = send(&app, feed_request(&format!("?since={since}&wait=1"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["revoked"], serde_json::json!([]));
    assert_eq!(r.json["cursor"].as_i64(), Some(since));
    // entries already there: answered at once whatever `wait` says
    let r = send(&app, feed_request("?since=0&wait=30")).await;
    assert_eq!(r.json["revoked"].as_array().map(Vec::len), Some(1));
    for bad in ["?wait=-1", "?wait=soon", "?wait=1&wait=2"] {
        let r = send(&app, feed_request(bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json["error"], "invalid_request", "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_shutting_down_answers_its_long_polls_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_at(&dir.path().join("db.sqlite")).await;
    let app = idp::app(state.clone());
    let since = cursor(&app).await;
    let poll =
        tokio::spawn(
            async move { send(&app, feed_request(&format!("?since={since}&wait=30"))).await },
        );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished());
    state.begin_shutdown();
    let r = tokio::time::timeout(PATIENCE, poll).await.unwrap().unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["revoked"], serde_json::json!([]));
    assert_eq!(r.json["cursor"].as_i64(), Some(since));
}

async fn login(app: &Router, password: &str) -> Resp {
    let body = format!("grant_type=password&username=alice&password={password}");
    send(app, form("/oauth2/token", Some(basic(DEMO)), &body)).await
}

async fn refresh(app: &Router, rt: &str) -> Resp {
    let body = format!("grant_type=refresh_token&refresh_token={rt}");
    send(app, form("/oauth2/token", Some(basic(DEMO)), &body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_token_presented_to_two_replicas_at_once_wins_once_and_ends_the_family() {
    let Some((a, b, _)) = two_replicas(&config()).await else {
        return;
    };
    for round in 0..3 {
        let r = login(&a, "alice-password-123").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let rt = r.json["refresh_token"].as_str().unwrap().to_owned();
        let (x, y) = tokio::join!(refresh(&a, &rt), refresh(&b, &rt));
        let mut statuses = [x.status.as_u16(), y.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 400],
            "round {round}: {} / {}",
            x.json,
            y.json
        );
        let winner = if x.status == StatusCode::OK { x } else { y };
        // the loser was a reuse: the whole family is over, the winner's new token included
        let next = winner.json["refresh_token"].as_str().unwrap();
        let r = refresh(&b, next).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "round {round}: {}",
            r.json
        );
        assert_eq!(r.json["error"], "invalid_grant");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_failures_on_one_replica_count_on_the_other() {
    let Some((a, b, _)) = two_replicas(&config()).await else {
        return;
    };
    // max_failures = 3 (common::config): two failures on A, one on B
    for app in [&a, &a, &b] {
        let r = login(app, "wrong-password").await;
        assert_eq!(r.json["error"], "invalid_grant", "{}", r.json);
    }
    // the user now waits, on either replica, even with the right password
    for app in [&a, &b] {
        let r = login(app, "alice-password-123").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_is_answered_503_and_the_idp_recovers_by_itself() {
    let Some(_) = pg_cluster::cluster() else {
        return;
    };
    // a cluster of its own: this test stops it
    let mut cluster = test_support::postgres::PostgresCluster::start().unwrap();
    let url = cluster.create_database("outage").unwrap();
    let app = idp::app(state_on_url(&url, &config()).await);
    token(&app, None).await;

    tokio::task::block_in_place(|| cluster.stop());
    assert!(
        cluster.execute("postgres", "SELECT 1").is_err(),
        "the server still answers"
    );
    // (client_credentials needs no database: it keeps working)
    token(&app, None).await;
    let r = login(&app, "alice-password-123").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
    assert_eq!(r.json["error"], "temporarily_unavailable");
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    let r = send(&app, feed_request("")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
    // A browser's login page (it issues a form token: a write) is a 503 page too, not a 500.
    let authorize = || {
        let req = Request::get(
            "/oauth2/authorize?response_type=code&client_id=demo-client\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback&scope=read&state=s1\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        )
        .body(Body::empty())
        .unwrap();
        send(&app, req)
    };
    let r = authorize().await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers.contains_key(header::RETRY_AFTER));

    tokio::task::block_in_place(|| cluster.restart()).unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = login(&app, "alice-password-123").await;
        if r.status == StatusCode::OK {
            break;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
        assert!(Instant::now() < deadline, "no recovery: {}", r.json);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(authorize().await.status, StatusCode::OK);
    // and the feed's wake-ups work again (the LISTEN connection came back)
    long_poll_wakes_on_revocation(&app, &app).await;
}
