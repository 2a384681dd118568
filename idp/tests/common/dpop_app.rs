//! The IDP set up for the DPoP tests (`tests/dpop_*.rs`): clients with and without DPoP
//! requirements, token requests carrying `DPoP` headers, and assertions on RFC 9449 errors.

use super::*;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use idp::AppState;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const BOUND: (&str, &str) = ("bound-client", "bound-client-secret-0123456789abcdef");
pub const NONCE_CLIENT: (&str, &str) = ("nonce-client", "nonce-client-secret-0123456789abcdef");
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub fn dpop_config(extra: &str) -> String {
    let h = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    format!(
        r#"
{extra}
[[clients]]
id = "demo-client"
secret_sha256 = "{demo}"
scopes = ["openid", "read", "write"]
audiences = ["demo-api"]
grant_types = ["client_credentials", "password", "refresh_token"]
[[clients]]
id = "public-app"
scopes = ["read"]
audiences = ["demo-api"]
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["app.example.native:/callback"]
[[clients]]
id = "{bound}"
secret_sha256 = "{bound_hash}"
scopes = ["read"]
audiences = ["demo-api"]
grant_types = ["client_credentials"]
dpop_bound_access_tokens = true
[[clients]]
id = "{nonce}"
secret_sha256 = "{nonce_hash}"
scopes = ["read"]
audiences = ["demo-api"]
grant_types = ["client_credentials"]
dpop_require_nonce = true
[[clients]]
id = "gateway"
secret_sha256 = "{gateway}"
audiences = ["idp"]
gateway = true
[[users]]
username = "alice"
password_argon2 = "{alice}"
"#,
        demo = h(DEMO.1),
        bound = BOUND.0,
        bound_hash = h(BOUND.1),
        nonce = NONCE_CLIENT.0,
        nonce_hash = h(NONCE_CLIENT.1),
        gateway = h(GATEWAY.1),
        alice = alice_hash(),
    )
}

pub async fn app_with(extra: &str) -> (tempfile::TempDir, Arc<AppState>, Router) {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(&dir.path().join("db.sqlite"), &dpop_config(extra)).await;
    let app = idp::app(Arc::clone(&state));
    (dir, state, app)
}

pub async fn app() -> (tempfile::TempDir, Arc<AppState>, Router) {
    app_with("").await
}

/// A token request with these `DPoP` header values.
pub fn token_request(auth: Option<(&str, &str)>, body: &str, proofs: &[&str]) -> Request<Body> {
    let mut req = form("/oauth2/token", auth.map(basic), body);
    for p in proofs {
        req.headers_mut().append("dpop", p.parse().unwrap());
    }
    req
}

pub async fn client_credentials(app: &Router, proofs: &[&str]) -> Resp {
    send(
        app,
        token_request(Some(DEMO), "grant_type=client_credentials", proofs),
    )
    .await
}

pub fn payload(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// Asserts an `invalid_dpop_proof` answer whose description mentions `needle`.
pub fn assert_invalid_proof(r: &Resp, needle: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["error"], "invalid_dpop_proof", "{}", r.json);
    let d = r.json["error_description"].as_str().unwrap();
    assert!(d.contains(needle), "{d:?} should mention {needle:?}");
    assert!(r.json.get("access_token").is_none());
}

pub fn assert_use_nonce(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["error"], "use_dpop_nonce", "{}", r.json);
    r.headers["dpop-nonce"].to_str().unwrap().to_owned()
}
