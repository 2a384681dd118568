//! The federation (revocation hub) role through the real router: an upstream OpenID Provider
//! simulated by a loopback axum server (a JWKS with an RSA 2048 and a P-256 key, a discovery
//! document), its back-channel logout tokens posted to `/oauth2/backchannel-logout`, cut-offs
//! reported by gateways to `/oauth2/cutoffs`, and both read back from the revocation feed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use common::{Resp, basic, send};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use test_support::{Issuer, b64};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const GATEWAY_A: (&str, &str) = ("gateway-a", "gateway-a-secret-0123456789abcdef0123");
const GATEWAY_B: (&str, &str) = ("gateway-b", "gateway-b-secret-0123456789abcdef0123");
const LIFETIME: i64 = 3600;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The upstream provider: its issuer URL and signing keys.
struct Op {
    issuer: String,
    es: Issuer,
    rsa: RsaKeyPair,
    /// What `/jwks` serves (`null`: answer 500), and how often it was asked.
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl Op {
    /// Starts a provider on loopback serving its JWKS at `/jwks` and a discovery document that
    /// names `discovery_issuer` (its own issuer unless a test wants a mismatch).
    async fn start(discovery_issuer: Option<&str>) -> Op {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der =
            aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
        let rsa = RsaKeyPair::from_pkcs8(der.as_ref()).unwrap();
        let public = key.public_key();
        let es = Issuer::es256(5, "op-es");
        let jwks = json!({"keys": [
            es.jwk(),
            {"kty": "RSA", "kid": "op-rsa", "alg": "RS256", "use": "sig",
             "n": b64(public.modulus().big_endian_without_leading_zero()),
             "e": b64(public.exponent().big_endian_without_leading_zero())}
        ]});
        let doc = json!({
            "issuer": discovery_issuer.unwrap_or(&issuer),
            "jwks_uri": format!("{issuer}/jwks"),
        });
        let jwks = Arc::new(Mutex::new(jwks));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&jwks), Arc::clone(&fetches));
        let app = Router::new()
            .route(
                "/jwks",
                axum::routing::get(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let current = served.lock().unwrap().clone();
                    async move {
                        if current.is_null() {
                            StatusCode::INTERNAL_SERVER_ERROR.into_response()
                        } else {
                            axum::Json(current).into_response()
                        }
                    }
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let doc = doc.clone();
                    async move { axum::Json(doc) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Op {
            issuer,
            es,
            rsa,
            jwks,
            fetches,
        }
    }

    fn claims(&self, change: Value) -> Value {
        let t = now();
        let mut c = json!({
            "iss": self.issuer, "aud": "webapp", "iat": t - 2, "exp": t + 120,
            "jti": format!("jti-{}", rand_suffix()), "sid": "op-sid-1", "sub": "alice",
            "events": {EVENT: {}}
        });
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    fn es256(&self, claims: &Value) -> String {
        self.es.sign(
            &json!({"alg": "ES256", "typ": "logout+jwt", "kid": "op-es"}),
            claims,
        )
    }

    fn rs256(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "logout+jwt", "kid": "op-rsa"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.rsa.public_modulus_len()];
        self.rsa
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", b64(&sig))
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn hub_config(op: &Op, keys: &str) -> String {
    let h = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    format!(
        r#"
[[federation.issuers]]
issuer = "{iss}"
{keys}
algorithms = ["RS256", "ES256"]
backchannel_audiences = ["webapp"]
max_token_lifetime_seconds = {LIFETIME}
leeway_seconds = 5
logout_token_max_age_seconds = 60

[[clients]]
id = "gateway-a"
secret_sha256 = "{a}"
gateway = true
federated_issuers = ["{iss}"]

[[clients]]
id = "gateway-b"
secret_sha256 = "{b}"
gateway = true
"#,
        iss = op.issuer,
        a = h(GATEWAY_A.1),
        b = h(GATEWAY_B.1),
    )
}

async fn hub(op: &Op, keys: &str) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().unwrap();
    let state = common::state_with(&dir.path().join("hub.sqlite"), &hub_config(op, keys)).await;
    (dir, idp::app(state))
}

fn jwks_uri(op: &Op) -> String {
    format!("jwks_uri = \"{}/jwks\"", op.issuer)
}

fn logout_request(body: String, content_type: &str) -> Request<Body> {
    Request::post("/oauth2/backchannel-logout")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap()
}

async fn post_logout(app: &Router, token: &str) -> Resp {
    send(
        app,
        logout_request(
            format!("logout_token={token}"),
            "application/x-www-form-urlencoded",
        ),
    )
    .await
}

async fn feed(app: &Router, since: Option<i64>) -> Value {
    let path = since.map_or("/oauth2/revocations".to_owned(), |s| {
        format!("/oauth2/revocations?since={s}")
    });
    let r = send(
        app,
        Request::get(path)
            .header(header::AUTHORIZATION, basic(GATEWAY_A))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json
}

fn report(auth: (&str, &str), body: &str) -> Request<Body> {
    Request::post("/oauth2/cutoffs")
        .header(header::AUTHORIZATION, basic(auth))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn a_valid_logout_token_becomes_a_cutoff_on_the_feed_once() {
    let op = Op::start(None).await;
    let (_dir, app) = hub(&op, &jwks_uri(&op)).await;
    let claims = op.claims(json!({}));
    let token = op.es256(&claims);
    let r = post_logout(&app, &token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(r.json, Value::Null, "an empty body");
    let iat = claims["iat"].as_i64().unwrap();
    let first = feed(&app, None).await;
    assert_eq!(
        first["revoked"],
        json!([{"iss": op.issuer, "sid": "op-sid-1", "cutoff": iat, "exp": iat + LIFETIME}])
    );
    // The same token again: a replay, refused, and the feed unchanged.
    let again = post_logout(&app, &token).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        again.json,
        json!({"error": "invalid_request", "error_description": "the logout token was received before"})
    );
    assert_eq!(feed(&app, None).await, first);

    // RS256, subject only: a subject cut-off.
    let sub_only = op.claims(json!({"sid": null, "sub": "bob"}));
    let r = post_logout(&app, &op.rs256(&sub_only)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let iat = sub_only["iat"].as_i64().unwrap();
    let after = feed(&app, first["cursor"].as_i64()).await;
    assert_eq!(
        after["revoked"],
        json!([{"iss": op.issuer, "sub": "bob", "cutoff": iat, "exp": iat + LIFETIME}])
    );
}

#[tokio::test]
async fn each_rule_broken_once_is_refused_and_nothing_changes() {
    let op = Op::start(None).await;
    let (_dir, app) = hub(&op, &jwks_uri(&op)).await;
    let before = feed(&app, None).await;
    let t = now();
    let rogue = Issuer::es256(9, "op-es");
    let es_header = json!({"alg": "ES256", "typ": "logout+jwt", "kid": "op-es"});
    let none = format!(
        "{}.{}.c2ln",
        b64(br#"{"alg":"none","typ":"logout+jwt"}"#),
        b64(op.claims(json!({})).to_string().as_bytes())
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "the logout token's audience is not accepted",
            op.es256(&op.claims(json!({"aud": "someone-else"}))),
        ),
        (
            "the logout token's issuer is not accepted",
            op.es256(&op.claims(json!({"iss": "http://127.0.0.1:1"}))),
        ),
        (
            "the logout token's signature is invalid",
            rogue.sign(&es_header, &op.claims(json!({}))),
        ),
        ("the logout token's algorithm is not accepted", none),
        (
            "the logout token carries a nonce",
            op.es256(&op.claims(json!({"nonce": "n"}))),
        ),
        (
            "the logout token has no back-channel logout event",
            op.es256(&op.claims(json!({"events": null}))),
        ),
        (
            "the logout token has no back-channel logout event",
            op.es256(&op.claims(json!({"events": {"http://x/y": {}}}))),
        ),
        (
            "the logout token has neither sid nor sub",
            op.es256(&op.claims(json!({"sid": null, "sub": null}))),
        ),
        (
            "the logout token has expired",
            op.es256(&op.claims(json!({"iat": t - 50, "exp": t - 10}))),
        ),
        (
            "the logout token was issued too long ago",
            op.es256(&op.claims(json!({"iat": t - 600}))),
        ),
        (
            "the logout token was issued in the future",
            op.es256(&op.claims(json!({"iat": t + 600}))),
        ),
        (
            "the logout token has no iat",
            op.es256(&op.claims(json!({"iat": null}))),
        ),
        (
            "the logout token has no jti",
            op.es256(&op.claims(json!({"jti": null}))),
        ),
        (
            "the logout token's typ is not logout+jwt",
            op.es.sign(
                &json!({"alg": "ES256", "typ": "JWT", "kid": "op-es"}),
                &op.claims(json!({})),
            ),
        ),
        (
            "the logout token is not a JWS naming its issuer",
            "not.a-token".to_owned(),
        ),
    ];
    for (what, token) in cases {
        let r = post_logout(&app, &token).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.json);
        assert_eq!(
            r.json,
            json!({"error": "invalid_request", "error_description": what})
        );
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store", "{what}");
    }
    // The request itself: content type, size, no token, two tokens.
    let valid = op.es256(&op.claims(json!({})));
    for (what, req) in [
        (
            "json content type",
            logout_request(format!("logout_token={valid}"), "application/json"),
        ),
        (
            "oversized",
            logout_request(
                format!("logout_token={}", "a".repeat(40_000)),
                "application/x-www-form-urlencoded",
            ),
        ),
        (
            "no token",
            logout_request("x=1".into(), "application/x-www-form-urlencoded"),
        ),
        (
            "two tokens",
            logout_request(
                format!("logout_token={valid}&logout_token={valid}"),
                "application/x-www-form-urlencoded",
            ),
        ),
    ] {
        let r = send(&app, req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.json);
        assert_eq!(r.json["error"], "invalid_request", "{what}");
    }
    assert_eq!(feed(&app, None).await, before);
    // …and the valid one still works (none of the refusals burned its jti).
    assert_eq!(post_logout(&app, &valid).await.status, StatusCode::OK);
}

#[tokio::test]
async fn gateways_report_cutoffs_for_their_issuers_only() {
    let op = Op::start(None).await;
    let (_dir, app) = hub(&op, &jwks_uri(&op)).await;
    let t = now();
    let body = json!({"iss": op.issuer, "sid": "gw-sid", "cutoff": t}).to_string();
    let r = send(&app, report(GATEWAY_A, &body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json, json!({"stored": true}));
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let first = feed(&app, None).await;
    assert_eq!(
        first["revoked"],
        json!([{"iss": op.issuer, "sid": "gw-sid", "cutoff": t, "exp": t + LIFETIME}])
    );
    let sub = json!({"iss": op.issuer, "sub": "carol", "cutoff": t - 5}).to_string();
    assert_eq!(
        send(&app, report(GATEWAY_A, &sub)).await.status,
        StatusCode::OK
    );

    // Gateway B may not report for that issuer; nobody for an issuer not federated.
    let r = send(&app, report(GATEWAY_B, &body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json["error"], "unauthorized_client");
    let other = json!({"iss": "http://127.0.0.1:1", "sid": "x", "cutoff": t}).to_string();
    assert_eq!(
        send(&app, report(GATEWAY_A, &other)).await.status,
        StatusCode::FORBIDDEN
    );
    // Unauthenticated: 401; bad bodies: 400.
    assert_eq!(
        send(&app, report((GATEWAY_A.0, "wrong-secret"), &body))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    for bad in [
        "{".to_owned(),
        json!({"iss": op.issuer, "cutoff": t}).to_string(),
        json!({"iss": op.issuer, "sid": "a", "sub": "b", "cutoff": t}).to_string(),
        json!({"iss": op.issuer, "sid": "", "cutoff": t}).to_string(),
        json!({"iss": op.issuer, "sid": "a", "cutoff": t + 3600}).to_string(),
        json!({"iss": op.issuer, "sid": "a", "cutoff": "now"}).to_string(),
        json!({"iss": op.issuer, "sid": "a", "cutoff": t, "extra": 1}).to_string(),
    ] {
        let r = send(&app, report(GATEWAY_A, &bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.json);
        assert_eq!(r.json["error"], "invalid_request", "{bad}");
    }
    assert_eq!(
        feed(&app, None).await["revoked"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_long_poll_wakes_when_a_cutoff_is_stored() {
    let op = Op::start(None).await;
    let (_dir, app) = hub(&op, &jwks_uri(&op)).await;
    let cursor = feed(&app, None).await["cursor"].as_i64().unwrap();
    let poll = {
        let app = app.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let r = send(
                &app,
                Request::get(format!("/oauth2/revocations?since={cursor}&wait=20"))
                    .header(header::AUTHORIZATION, basic(GATEWAY_A))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            (r.json, started.elapsed())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let token = op.es256(&op.claims(json!({"sid": "woken"})));
    assert_eq!(post_logout(&app, &token).await.status, StatusCode::OK);
    let (json, waited) = poll.await.unwrap();
    assert_eq!(json["revoked"][0]["sid"], "woken", "{json}");
    assert!(waited < std::time::Duration::from_secs(10), "{waited:?}");
}

#[tokio::test]
async fn the_metrics_count_outcomes() {
    let op = Op::start(None).await;
    let (_dir, app) = hub(&op, &jwks_uri(&op)).await;
    post_logout(&app, &op.es256(&op.claims(json!({})))).await;
    post_logout(&app, &op.es256(&op.claims(json!({"nonce": "x"})))).await;
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
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for line in [
        "idp_federation_requests_total{endpoint=\"backchannel_logout\",outcome=\"stored\"} 1",
        "idp_federation_requests_total{endpoint=\"backchannel_logout\",outcome=\"nonce_present\"} 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[path = "federation/keys.rs"]
mod keys;
#[path = "federation/postgres.rs"]
mod postgres;
#[path = "federation/settings.rs"]
mod settings;
