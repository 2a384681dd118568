//! Inputs the fuzz targets (`scripts/fuzz`, `fuzz/fuzz_targets/idp_token_request.rs`) found
//! wrong, kept as files in `tests/fuzz_regressions/` in the target's format: the
//! `Authorization` value, a newline, the `Content-Type` value, a newline, the body. Each is sent
//! to `POST /oauth2/token` through the real router and must be refused with `invalid_client`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;

fn request(input: &[u8]) -> Request<Body> {
    let mut parts = input.splitn(3, |b| *b == b'\n');
    let authorization = parts.next().unwrap_or_default();
    let content_type = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default().to_vec();
    let mut req = Request::post("/oauth2/token");
    if !authorization.is_empty() {
        req = req.header(header::AUTHORIZATION, authorization);
    }
    if !content_type.is_empty() {
        req = req.header(header::CONTENT_TYPE, content_type);
    }
    req.body(Body::from(body)).unwrap()
}

/// Basic credentials whose id or secret carries a raw `&` after the real value
/// (`demo-client:<secret>&anything`, `demo-client&anything:<secret>`): the form decoding kept
/// only what came before the `&`, so a string that is not the secret authenticated.
#[tokio::test]
async fn basic_credentials_with_a_raw_ampersand_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    for name in ["basic-secret-with-ampersand", "basic-id-with-ampersand"] {
        let path = format!(
            "{}/tests/fuzz_regressions/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let input = std::fs::read(&path).unwrap();
        let r = send(&app, request(&input)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {:?}", r.json);
        assert_eq!(r.json["error"], "invalid_client", "{name}");
    }
    // The same client with its exact secret is still accepted.
    let r = send(
        &app,
        form(
            "/oauth2/token",
            Some(basic(DEMO)),
            "grant_type=client_credentials",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
}
