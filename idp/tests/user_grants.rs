//! Password and refresh-token grants: sessions, rotation, reuse detection, lockout, logout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::Router;
use common::*;
use serde_json::Value;

async fn login(app: &Router, password: &str, scope: Option<&str>) -> Resp {
    let mut body = format!("grant_type=password&username=alice&password={password}");
    if let Some(s) = scope {
        body.push_str(&format!("&scope={s}"));
    }
    send(app, form("/oauth2/token", Some(basic(DEMO)), &body)).await
}

async fn refresh(app: &Router, rt: &str, scope: Option<&str>) -> Resp {
    let mut body = format!("grant_type=refresh_token&refresh_token={rt}");
    if let Some(s) = scope {
        body.push_str(&format!("&scope={s}"));
    }
    send(app, form("/oauth2/token", Some(basic(DEMO)), &body)).await
}

fn claims(at: &str) -> Value {
    use base64::Engine;
    let part = at.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn feed(app: &Router) -> Value {
    let req = axum::http::Request::get("/oauth2/revocations")
        .header(axum::http::header::AUTHORIZATION, basic(GATEWAY))
        .body(axum::body::Body::empty())
        .unwrap();
    send(app, req).await.json
}

#[tokio::test]
async fn password_login_opens_a_session_and_refresh_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let r = login(&app, "alice-password-123", Some("read")).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let c = claims(r.json["access_token"].as_str().unwrap());
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert!(c["sid"].is_string());
    assert!(!c["sub"].as_str().unwrap().starts_with("client:"));
    assert_eq!(c["scope"], "read");
    let rt1 = r.json["refresh_token"].as_str().unwrap().to_owned();

    // rotation: a new refresh token, same session; scopes can narrow but not widen
    assert_eq!(
        refresh(&app, &rt1, Some("read write")).await.json["error"],
        "invalid_scope"
    );
    let r2 = refresh(&app, &rt1, None).await;
    assert_eq!(r2.status, 200, "{}", r2.json);
    let rt2 = r2.json["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(
        claims(r2.json["access_token"].as_str().unwrap())["sid"],
        c["sid"]
    );

    // reuse of the rotated token: the whole session ends, the newer token dies too
    let reuse = refresh(&app, &rt1, None).await;
    assert_eq!(reuse.json["error"], "invalid_grant");
    assert_eq!(
        refresh(&app, &rt2, None).await.json["error"],
        "invalid_grant"
    );
    let f = feed(&app).await;
    assert!(
        f["revoked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["sid"] == c["sid"]),
        "{f}"
    );
}

#[tokio::test]
async fn revoking_the_access_token_ends_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let r = login(&app, "alice-password-123", None).await;
    let at = r.json["access_token"].as_str().unwrap().to_owned();
    let rt = r.json["refresh_token"].as_str().unwrap().to_owned();
    // the gateway revokes at logout
    let rev = send(
        &app,
        form(
            "/oauth2/revoke",
            Some(basic(GATEWAY)),
            &format!("token={at}&token_type_hint=access_token"),
        ),
    )
    .await;
    assert_eq!(rev.status, 200);
    assert_eq!(
        refresh(&app, &rt, None).await.json["error"],
        "invalid_grant"
    );
    let f = feed(&app).await;
    let sid = claims(&at)["sid"].clone();
    assert!(
        f["revoked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["sid"] == sid),
        "{f}"
    );
    // revoking a refresh token ends its session too
    let r = login(&app, "alice-password-123", None).await;
    let rt = r.json["refresh_token"].as_str().unwrap().to_owned();
    send(
        &app,
        form("/oauth2/revoke", Some(basic(DEMO)), &format!("token={rt}")),
    )
    .await;
    assert_eq!(
        refresh(&app, &rt, None).await.json["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn wrong_passwords_do_not_tell_and_lock_out() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let wrong = login(&app, "nope", None).await;
    let body = "grant_type=password&username=mallory&password=x";
    let unknown = send(&app, form("/oauth2/token", Some(basic(DEMO)), body)).await;
    assert_eq!(
        wrong.json, unknown.json,
        "the same answer for an unknown user"
    );
    assert_eq!(wrong.json["error"], "invalid_grant");
    // max_failures = 3: two more failures lock alice out, even with the right password
    login(&app, "nope", None).await;
    login(&app, "nope", None).await;
    let locked = login(&app, "alice-password-123", None).await;
    assert_eq!(locked.json["error"], "invalid_grant", "{}", locked.json);
    // clients not allowed the password grant are refused
    let body = "grant_type=password&username=alice&password=alice-password-123";
    assert_eq!(
        send(&app, form("/oauth2/token", Some(basic(GATEWAY)), body))
            .await
            .json["error"],
        "unauthorized_client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refresh_chains_all_succeed() {
    // Eight sessions rotating their refresh tokens at the same time: every rotation must get
    // through (write transactions wait their turn instead of failing with SQLITE_BUSY).
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let mut chains = Vec::new();
    for _ in 0..8 {
        let r = login(&app, "alice-password-123", None).await;
        assert_eq!(r.status, 200, "{}", r.json);
        let app = app.clone();
        let mut rt = r.json["refresh_token"].as_str().unwrap().to_owned();
        chains.push(tokio::spawn(async move {
            for i in 0..25 {
                let r = refresh(&app, &rt, None).await;
                assert_eq!(r.status, 200, "rotation {i}: {}", r.json);
                rt = r.json["refresh_token"].as_str().unwrap().to_owned();
            }
        }));
    }
    for chain in chains {
        chain.await.unwrap();
    }
}
