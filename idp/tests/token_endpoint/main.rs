//! The token, revocation, feed and introspection endpoints through the real router (tower
//! `oneshot`), on a real SQLite file; issued tokens checked with the gateway filter's own code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[path = "../common/mod.rs"]
mod common;
mod revocation;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn client_credentials_tokens_verify_with_the_gateway_code() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let r = send(
        &app,
        form(
            "/oauth2/token",
            Some(basic(DEMO)),
            "grant_type=client_credentials&scope=read",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        (
            r.json["token_type"].as_str(),
            r.json["scope"].as_str(),
            r.json["expires_in"].as_i64()
        ),
        (Some("Bearer"), Some("read"), Some(300))
    );
    let at = r.json["access_token"].as_str().unwrap();

    let jwks = send(
        &app,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json;
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private part in the JWKS"
    );
    let config = filter_config(&jwks);
    let keys = config.providers[0].inline_keys.clone().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let v = filter::validation::validate(&config, &[&keys], at, now).unwrap();
    assert_eq!(v.sub.as_deref(), Some("client:demo-client"));
    assert_eq!(v.scopes, ["read"]);
    assert_eq!(v.claims["client_id"], "demo-client");
    assert!(v.jti.is_some());

    // client_secret_post works too; no scope asked: all the client's scopes.
    let r = send(
        &app,
        form(
            "/oauth2/token",
            None,
            &format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                DEMO.0, DEMO.1
            ),
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.json["scope"].as_str()),
        (StatusCode::OK, Some("read write"))
    );
}

#[tokio::test]
async fn bad_requests_get_rfc6749_errors() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            form(
                "/oauth2/token",
                Some(basic((DEMO.0, "wrong-secret"))),
                "grant_type=client_credentials",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            form(
                "/oauth2/token",
                Some(basic(("nobody", "x"))),
                "grant_type=client_credentials",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            form("/oauth2/token", None, "grant_type=client_credentials"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            form("/oauth2/token", Some(basic(DEMO)), ""),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            form(
                "/oauth2/token",
                Some(basic(DEMO)),
                "grant_type=client_credentials&grant_type=client_credentials",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            form(
                "/oauth2/token",
                Some(basic(DEMO)),
                &format!("grant_type=client_credentials&client_secret={}", DEMO.1),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            form("/oauth2/token", Some(basic(DEMO)), "grant_type=magic"),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            form(
                "/oauth2/token",
                Some(basic(DEMO)),
                "grant_type=client_credentials&scope=admin",
            ),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            form(
                "/oauth2/token",
                None,
                "grant_type=client_credentials&client_id=public-app",
            ),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            form(
                "/oauth2/token",
                Some(basic(GATEWAY)),
                "grant_type=client_credentials",
            ),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            Request::post("/oauth2/token")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, basic(DEMO))
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            form(
                "/oauth2/token",
                Some("Basic !!!".into()),
                "grant_type=client_credentials",
            ),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
    ];
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let r = send(&app, req).await;
        assert_eq!(
            (r.status, r.json["error"].as_str()),
            (status, Some(code)),
            "case {i}: {}",
            r.json
        );
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(
                r.headers[header::WWW_AUTHENTICATE],
                "Basic realm=\"idp\"",
                "case {i}"
            );
        }
    }
    // Oversized bodies are refused before parsing.
    let big = "a".repeat(70 * 1024);
    let r = send(&app, form("/oauth2/token", Some(basic(DEMO)), &big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_restart_reuses_the_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let first = idp::app(state_at(&db).await);
    let jwks1 = send(
        &first,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json;
    let at = token(&first, None).await;
    drop(first);
    let second = idp::app(state_at(&db).await);
    let jwks2 = send(
        &second,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json;
    assert_eq!(jwks1, jwks2);
    assert_eq!(jwks1["keys"].as_array().unwrap().len(), 1);
    // a token from before the restart still introspects as active
    let r = send(
        &second,
        form(
            "/oauth2/introspect",
            Some(basic(GATEWAY)),
            &format!("token={at}"),
        ),
    )
    .await;
    assert_eq!(r.json["active"], true, "{}", r.json);
    // another database: another key
    let other = idp::app(state_at(&dir.path().join("other.sqlite")).await);
    let jwks3 = send(
        &other,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json;
    assert_ne!(jwks1["keys"][0]["kid"], jwks3["keys"][0]["kid"]);
}

#[tokio::test]
async fn key_rotation_publishes_before_signing_and_keeps_old_tokens_valid() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_at(&dir.path().join("db.sqlite")).await;
    let app = idp::app(state.clone());
    let jwks = || async {
        send(
            &app,
            Request::get("/.well-known/jwks.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .json
    };
    let kid_of = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    let old = token(&app, None).await;
    let now = idp::http::state::unix_now();
    // published 1 hour ahead: in the JWKS at once, not signing yet
    let new_kid = idp::oauth::keys::schedule_rotation(
        &*state.store,
        state.kek(),
        idp::oauth::keys::SigningAlg::Es256,
        now,
        3_600,
    )
    .await
    .unwrap();
    state.refresh_keys().await.unwrap();
    let keys = jwks().await["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k["kid"] == new_kid.as_str()));
    assert_eq!(kid_of(&token(&app, None).await), kid_of(&old));
    // due now: it signs; the old key stays published for the old tokens
    let rotate_now = idp::oauth::keys::schedule_rotation(
        &*state.store,
        state.kek(),
        idp::oauth::keys::SigningAlg::Es256,
        now,
        0,
    )
    .await
    .unwrap();
    state.refresh_keys().await.unwrap();
    assert_eq!(kid_of(&token(&app, None).await), rotate_now);
    assert_eq!(jwks().await["keys"].as_array().unwrap().len(), 3);
    let r = send(
        &app,
        form(
            "/oauth2/introspect",
            Some(basic(GATEWAY)),
            &format!("token={old}"),
        ),
    )
    .await;
    assert_eq!(
        r.json["active"], true,
        "a token signed by the previous key is still valid"
    );
}

#[tokio::test]
async fn metrics_count_tokens_errors_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    token(&app, Some("read")).await;
    token(&app, None).await;
    let bad = send(
        &app,
        form(
            "/oauth2/token",
            Some(basic((DEMO.0, "wrong-secret-0123456789abcdef0123"))),
            "grant_type=client_credentials",
        ),
    )
    .await;
    assert_eq!(bad.status, 401);
    let res = app
        .clone()
        .oneshot(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains("idp_tokens_issued_total{grant_type=\"client_credentials\"} 2"),
        "{text}"
    );
    assert!(text.contains("idp_token_errors_total{error=\"invalid_client\"} 1"));
    assert!(text.contains(
        "idp_http_request_duration_seconds_count{method=\"POST\",route=\"/oauth2/token\",status=\"200\"} 2"
    ));
    assert!(text.contains("status=\"401\"} 1"));
}
