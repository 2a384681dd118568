//! Shared by the IDP integration tests: a real router on a real SQLite file, driven with tower
//! `oneshot`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

pub mod dpop;
pub mod dpop_app;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::BodyExt;
use idp::settings::{Overrides, RawSettings};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tower::ServiceExt;

pub const DEMO: (&str, &str) = ("demo-client", "demo-client-secret-0123456789abcdef");
pub const GATEWAY: (&str, &str) = ("gateway", "gateway-secret-0123456789abcdef0123");
pub const ISSUER: &str = "http://127.0.0.1:9000";

pub fn alice_hash() -> &'static str {
    use argon2::PasswordHasher;
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        argon2::Argon2::default()
            .hash_password(b"alice-password-123")
            .unwrap()
            .to_string()
    })
}

pub fn config() -> String {
    let h = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    format!(
        r#"
[[clients]]
id = "demo-client"
secret_sha256 = "{}"
scopes = ["read", "write"]
audiences = ["demo-api"]
grant_types = ["authorization_code", "client_credentials", "password", "refresh_token"]
redirect_uris = ["http://127.0.0.1:8080/callback"]
[[clients]]
id = "gateway"
secret_sha256 = "{}"
audiences = ["idp"]
gateway = true
[[clients]]
id = "public-app"
scopes = ["read"]
audiences = ["demo-api"]
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["app.example.native:/callback"]
[[users]]
username = "alice"
password_argon2 = "{}"
[password_policy]
max_failures = 3
"#,
        h(DEMO.1),
        h(GATEWAY.1),
        alice_hash()
    )
}

pub async fn state_at(db: &std::path::Path) -> Arc<idp::AppState> {
    state_with(db, &config()).await
}

pub async fn state_with(db: &std::path::Path, config: &str) -> Arc<idp::AppState> {
    let overrides = Overrides {
        database: Some(format!("sqlite://{}?mode=rwc", db.display())),
        ..Default::default()
    };
    let settings = RawSettings::from_toml(config)
        .unwrap()
        .validate(&overrides)
        .unwrap();
    idp::AppState::open(settings).await.unwrap()
}

/// The key-encryption key every replica of a PostgreSQL test shares.
pub const SHARED_KEK: &str = "0707070707070707070707070707070707070707070707070707070707070707";

/// A server state on the database at `url` (any backend), with [`SHARED_KEK`].
pub async fn state_on_url(url: &str, config: &str) -> Arc<idp::AppState> {
    let overrides = Overrides {
        database: Some(url.to_owned()),
        key_encryption_key: Some(idp::settings::RedactedString(SHARED_KEK.to_owned())),
        ..Default::default()
    };
    let settings = RawSettings::from_toml(config)
        .unwrap()
        .validate(&overrides)
        .unwrap();
    idp::AppState::open(settings).await.unwrap()
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
}

pub async fn send(app: &Router, req: Request<Body>) -> Resp {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

pub fn basic((id, secret): (&str, &str)) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

pub fn form(path: &str, auth: Option<String>, body: &str) -> Request<Body> {
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

pub async fn token(app: &Router, scope: Option<&str>) -> String {
    let body = match scope {
        Some(s) => format!("grant_type=client_credentials&scope={s}"),
        None => "grant_type=client_credentials".into(),
    };
    let r = send(app, form("/oauth2/token", Some(basic(DEMO)), &body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["access_token"].as_str().unwrap().to_owned()
}

pub fn filter_config(jwks: &Value) -> filter::config::FilterConfig {
    let c = json!({"providers": [{"issuer": ISSUER, "audiences": ["demo-api"], "algorithms": ["ES256"], "inline_jwks": jwks}]});
    filter::config::FilterConfig::from_json(c.to_string().as_bytes()).unwrap()
}
