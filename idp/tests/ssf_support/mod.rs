//! Shared by the SSF transmitter and back-channel logout sender tests: an IDP with a receiver
//! client (`ssf.manage`), a read-only one (`ssf.read`), a client without either, a user client
//! (password grant: sessions), and helpers to read and check SETs against the IDP's JWKS.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use super::common::{self, Resp, basic, form, send};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use idp::settings::{Overrides, RawSettings};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub const RECEIVER: (&str, &str) = ("ssf-receiver", "ssf-receiver-secret-0123456789abcdef");
pub const READER: (&str, &str) = ("ssf-reader", "ssf-reader-secret-0123456789abcdef00");
pub const OTHER: (&str, &str) = ("plain-client", "plain-client-secret-0123456789abcdef");
pub const USER_APP: (&str, &str) = ("user-app", "user-app-secret-0123456789abcdef0123");
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const TOKEN_REVOKED: &str =
    "https://schemas.openid.net/secevent/oauth/event-type/token-revoked";
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

fn h(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The configuration; `bcl` is the user app's back-channel logout URI, `extra` more TOML.
pub fn config(bcl: Option<&str>, extra: &str) -> String {
    let bcl = bcl.map_or(String::new(), |u| {
        format!("backchannel_logout_uri = \"{u}\"\nbackchannel_logout_session_required = true\n")
    });
    format!(
        r#"
{}{}{}{}{bcl}
[[users]]
username = "alice"
password_argon2 = "{}"
[ssf]
max_poll_wait_seconds = 3
[ssf.push]
max_attempts = 4
first_retry_ms = 100
max_retry_ms = 400
timeout_ms = 500
[backchannel_logout]
max_attempts = 3
first_retry_ms = 100
max_retry_ms = 200
timeout_ms = 400
{extra}
"#,
        receiver_client(RECEIVER),
        client_toml(READER, &["ssf.read"], "idp", &["client_credentials"]),
        client_toml(OTHER, &["read"], "idp", &["client_credentials"]),
        user_app_client(),
        common::alice_hash()
    )
}

/// A `[[clients]]` table for `client` (id, secret), ending with its `grant_types` line (more
/// keys of that client may follow).
pub fn client_toml(
    client: (&str, &str),
    scopes: &[&str],
    audience: &str,
    grant_types: &[&str],
) -> String {
    format!(
        "[[clients]]\nid = \"{}\"\nsecret_sha256 = \"{}\"\nscopes = {}\naudiences = [\"{audience}\"]\ngrant_types = {}\n",
        client.0,
        h(client.1),
        json!(scopes),
        json!(grant_types)
    )
}

/// An SSF receiver client (`ssf.manage`, `ssf.read`; client credentials).
pub fn receiver_client(client: (&str, &str)) -> String {
    client_toml(
        client,
        &["ssf.manage", "ssf.read"],
        "idp",
        &["client_credentials"],
    )
}

/// The user app: alice's password grant and refresh tokens.
pub fn user_app_client() -> String {
    client_toml(
        USER_APP,
        &["read"],
        "demo-api",
        &["password", "refresh_token"],
    )
}

/// The gateway client, reporting cut-offs of `federated_issuer` when given.
pub fn gateway_client(federated_issuer: Option<&str>) -> String {
    let federated = federated_issuer.map_or(String::new(), |i| {
        format!("federated_issuers = [\"{i}\"]\n")
    });
    format!(
        "[[clients]]\nid = \"{}\"\nsecret_sha256 = \"{}\"\naudiences = [\"idp\"]\ngateway = true\n{federated}",
        common::GATEWAY.0,
        h(common::GATEWAY.1)
    )
}

/// Serves `state` on `listener` until the test ends.
pub fn serve(state: &Arc<idp::AppState>, listener: tokio::net::TcpListener) {
    let app = idp::app(Arc::clone(state));
    let limits = state.settings.http;
    tokio::spawn(idp::http::server::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
}

/// A server state on the SQLite file `name` in `dir`, with `issuer`.
pub async fn open(dir: &Path, name: &str, issuer: &str, config: &str) -> Arc<idp::AppState> {
    let overrides = Overrides {
        database: Some(format!("sqlite://{}?mode=rwc", dir.join(name).display())),
        issuer: Some(issuer.to_owned()),
        ..Default::default()
    };
    let settings = RawSettings::from_toml(config)
        .unwrap()
        .validate(&overrides)
        .unwrap();
    idp::AppState::open(settings).await.unwrap()
}

/// How a hub's stream gets the transmitter's SETs.
pub enum HubDelivery {
    /// Pushed to the hub (RFC 8935).
    Push,
    /// Long polls of the transmitter (RFC 8936).
    Poll { long_poll_seconds: u32 },
}

/// Our IDP in its hub role on loopback (SQLite file `name` in `dir`): its one stream, `ours`,
/// is the transmitter `a_issuer`'s (discovered, and a federated issuer), through the receiver
/// client `receiver` at A; its gateway client reads A's cut-offs.
pub async fn hub(
    dir: &Path,
    name: &str,
    a_issuer: &str,
    receiver: (&str, &str),
    delivery: HubDelivery,
) -> Arc<idp::AppState> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let delivery = match delivery {
        HubDelivery::Push => format!(
            "delivery = \"push\"\npush_url = \"{issuer}/ssf/push/ours\"\npush_authorization = \"Bearer push-secret-0123456789abcdef\""
        ),
        HubDelivery::Poll { long_poll_seconds } => {
            format!("delivery = \"poll\"\nlong_poll_seconds = {long_poll_seconds}")
        }
    };
    let config = format!(
        r#"
[[federation.issuers]]
issuer = "{a_issuer}"
discovery = true
max_token_lifetime_seconds = 600
[[federation.ssf_streams]]
name = "ours"
transmitter = "{a_issuer}"
audience = "{id}"
issuers = ["{a_issuer}"]
{delivery}
auth = {{ client_credentials = {{ token_endpoint = "{a_issuer}/oauth2/token", client_id = "{id}", client_secret = "{secret}", scopes = ["ssf.manage"] }} }}
{gateway}"#,
        id = receiver.0,
        secret = receiver.1,
        gateway = gateway_client(Some(a_issuer)),
    );
    let b = open(dir, name, &issuer, &config).await;
    let count: idp::federation::ssf::Count = Arc::new(|_, _| {});
    b.hub
        .ssf
        .spawn(Arc::clone(&b.store), &b.settings.federation, count);
    b.hub.spawn_refresh(Duration::from_secs(300));
    serve(&b, listener);
    b
}

/// A client-credentials token of `client` with `scope`.
pub async fn token(app: &Router, client: (&str, &str), scope: &str) -> String {
    let r = send(
        app,
        form(
            "/oauth2/token",
            Some(basic(client)),
            &format!("grant_type=client_credentials&scope={scope}"),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["access_token"].as_str().unwrap().to_owned()
}

/// alice's token response through the user app's password grant (checked: 200).
pub async fn alice_tokens(app: &Router) -> Value {
    let r = send(
        app,
        form(
            "/oauth2/token",
            Some(basic(USER_APP)),
            "grant_type=password&username=alice&password=alice-password-123&scope=read",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json
}

/// alice's tokens through the user app: `(access_token, sid)`.
pub async fn user_session(app: &Router) -> (String, String) {
    let tokens = alice_tokens(app).await;
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let claims = payload(&at);
    (at, claims["sid"].as_str().unwrap().to_owned())
}

/// Ends the session of `access_token` by RFC 7009 revocation (the client's own token).
pub async fn revoke(app: &Router, access_token: &str) -> Resp {
    revoke_as(app, USER_APP, &format!("token={access_token}")).await
}

/// An RFC 7009 revocation request by `client` with the form `body`.
pub async fn revoke_as(app: &Router, client: (&str, &str), body: &str) -> Resp {
    send(app, form("/oauth2/revoke", Some(basic(client)), body)).await
}

pub fn json_request(
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

/// Creates a stream for the bearer's client; gives its `stream_id`.
pub async fn create_stream(app: &Router, bearer: &str, delivery: Value) -> String {
    let r = send(
        app,
        json_request(
            "POST",
            "/ssf/stream",
            Some(bearer),
            Some(
                json!({"delivery": delivery, "events_requested": [SESSION_REVOKED, TOKEN_REVOKED]}),
            ),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    r.json["stream_id"].as_str().unwrap().to_owned()
}

pub async fn poll(app: &Router, bearer: &str, body: Value) -> Resp {
    send(
        app,
        json_request("POST", "/ssf/poll", Some(bearer), Some(body)),
    )
    .await
}

/// The unverified payload of a JWT.
pub fn payload(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Checks `jwt` with `jsonwebtoken` against the IDP's JWKS (signature by a published key,
/// `typ`, `iss`, `aud`) and gives its claims.
pub async fn verified(app: &Router, jwt: &str, typ: &str, aud: &str) -> Value {
    let jwks = send(
        app,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json;
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some(typ));
    let kid = header.kid.clone().unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .expect("the signing key is in the JWKS")
            .clone(),
    )
    .unwrap();
    let key = DecodingKey::from_jwk(&jwk).unwrap();
    assert_ne!(header.alg, Algorithm::HS256);
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[common::ISSUER]);
    v.set_audience(&[aud]);
    v.validate_exp = false;
    v.set_required_spec_claims(&["iss", "aud", "iat"]);
    jsonwebtoken::decode::<Value>(jwt, &key, &v).unwrap().claims
}

/// The metrics text.
pub async fn metrics(app: &Router) -> String {
    let res = tower::ServiceExt::oneshot(
        app.clone(),
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A loopback HTTP receiver recording what it gets; its first `fail_first` requests are
/// answered 503.
pub struct Receiver {
    pub url: String,
    pub got: tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, String)>,
}

pub async fn receiver(path: &str, fail_first: usize, ok: StatusCode) -> Receiver {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (tx, got) = tokio::sync::mpsc::unbounded_channel();
    let seen = Arc::new(AtomicUsize::new(0));
    let route = axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
        let tx = tx.clone();
        let seen = Arc::clone(&seen);
        async move {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if n < fail_first {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            let _ = tx.send((headers, body));
            ok
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(path, route);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url: format!("http://{addr}{path}"),
        got,
    }
}
