//! DPoP (RFC 9449) at the IDP, through the real router on a real SQLite file: bound tokens
//! (`cnf.jkt`, `token_type: DPoP`) on every grant, and one named test per way a proof can be
//! wrong. Proofs are made by hand (`common::dpop`) so that each can be broken on purpose.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::dpop::*;
use common::*;
use idp::AppState;
use idp::oauth::authorization::{respond, validate};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

const BOUND: (&str, &str) = ("bound-client", "bound-client-secret-0123456789abcdef");
const NONCE_CLIENT: (&str, &str) = ("nonce-client", "nonce-client-secret-0123456789abcdef");
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn dpop_config(extra: &str) -> String {
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

async fn app_with(extra: &str) -> (tempfile::TempDir, Arc<AppState>, Router) {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(&dir.path().join("db.sqlite"), &dpop_config(extra)).await;
    let app = idp::app(Arc::clone(&state));
    (dir, state, app)
}

async fn app() -> (tempfile::TempDir, Arc<AppState>, Router) {
    app_with("").await
}

/// A token request with these `DPoP` header values.
fn token_request(auth: Option<(&str, &str)>, body: &str, proofs: &[&str]) -> Request<Body> {
    let mut req = form("/oauth2/token", auth.map(basic), body);
    for p in proofs {
        req.headers_mut().append("dpop", p.parse().unwrap());
    }
    req
}

async fn client_credentials(app: &Router, proofs: &[&str]) -> Resp {
    send(
        app,
        token_request(Some(DEMO), "grant_type=client_credentials", proofs),
    )
    .await
}

fn payload(jwt: &str) -> Value {
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
fn assert_invalid_proof(r: &Resp, needle: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["error"], "invalid_dpop_proof", "{}", r.json);
    let d = r.json["error_description"].as_str().unwrap();
    assert!(d.contains(needle), "{d:?} should mention {needle:?}");
    assert!(r.json.get("access_token").is_none());
}

// ---- bound tokens -------------------------------------------------------------------------

#[tokio::test]
async fn a_valid_proof_binds_the_access_token_to_the_key() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let r = client_credentials(&app, &[&key.proof("POST", TOKEN_URL)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["token_type"], "DPoP");
    let at = r.json["access_token"].as_str().unwrap();
    assert_eq!(payload(at)["cnf"], json!({"jkt": key.jkt()}));
    assert!(r.headers.get("dpop-nonce").is_none(), "no nonce in use");

    // introspection says so too (RFC 9449 §6.2)
    let i = send(
        &app,
        form(
            "/oauth2/introspect",
            Some(basic(GATEWAY)),
            &format!("token={at}"),
        ),
    )
    .await;
    assert_eq!(i.json["active"], true);
    assert_eq!(i.json["token_type"], "DPoP");
    assert_eq!(i.json["cnf"]["jkt"], key.jkt());

    // without a proof: a plain bearer token, no cnf
    let r = client_credentials(&app, &[]).await;
    assert_eq!(r.json["token_type"], "Bearer");
    assert!(
        payload(r.json["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
}

#[tokio::test]
async fn an_eddsa_proof_is_accepted() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::ed25519();
    let r = client_credentials(&app, &[&key.proof("POST", TOKEN_URL)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        payload(r.json["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
}

#[tokio::test]
async fn discovery_publishes_the_proof_algorithms() {
    let (_dir, _state, app) = app().await;
    let md = send(
        &app,
        Request::get("/.well-known/openid-configuration")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json;
    assert_eq!(
        md["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "Ed25519", "PS256", "RS256"])
    );
}

// ---- one test per bad proof ---------------------------------------------------------------

#[tokio::test]
async fn replayed_jti_is_refused() {
    let (_dir, _state, app) = app().await;
    let proof = DpopKey::es256().proof("POST", TOKEN_URL);
    assert_eq!(
        client_credentials(&app, &[&proof]).await.status,
        StatusCode::OK
    );
    let r = client_credentials(&app, &[&proof]).await;
    assert_invalid_proof(&r, "jti is replayed");
}

#[tokio::test]
async fn replayed_jti_is_refused_by_another_replica_on_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let one = idp::app(state_with(&db, &dpop_config("")).await);
    let two = idp::app(state_with(&db, &dpop_config("")).await);
    let proof = DpopKey::es256().proof("POST", TOKEN_URL);
    assert_eq!(
        client_credentials(&one, &[&proof]).await.status,
        StatusCode::OK
    );
    assert_invalid_proof(&client_credentials(&two, &[&proof]).await, "replayed");
}

#[tokio::test]
async fn wrong_htm_is_refused() {
    let (_dir, _state, app) = app().await;
    let r = client_credentials(&app, &[&DpopKey::es256().proof("GET", TOKEN_URL)]).await;
    assert_invalid_proof(&r, "htm");
}

#[tokio::test]
async fn wrong_htu_is_refused() {
    let (_dir, _state, app) = app().await;
    for htu in [
        "http://127.0.0.1:9000/oauth2/revoke",
        "http://127.0.0.1:9001/oauth2/token",
        "https://127.0.0.1:9000/oauth2/token",
        "http://localhost:9000/oauth2/token",
    ] {
        let r = client_credentials(&app, &[&DpopKey::es256().proof("POST", htu)]).await;
        assert_invalid_proof(&r, "htu");
    }
    // the same URL written differently is the same URL (RFC 3986 normalisation)
    let r = client_credentials(
        &app,
        &[&DpopKey::es256().proof("POST", "HTTP://127.0.0.1:9000/oauth2/./token")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn query_in_htu_is_refused() {
    let (_dir, _state, app) = app().await;
    for htu in [
        "http://127.0.0.1:9000/oauth2/token?x=1",
        "http://127.0.0.1:9000/oauth2/token#frag",
    ] {
        let r = client_credentials(&app, &[&DpopKey::es256().proof("POST", htu)]).await;
        assert_invalid_proof(&r, "query or fragment");
    }
}

#[tokio::test]
async fn stale_iat_is_refused() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let mut c = claims("POST", TOKEN_URL);
    c["iat"] = (now() - 61).into();
    let r = client_credentials(&app, &[&key.sign_jws(&key.header(), &c)]).await;
    assert_invalid_proof(&r, "too old");
    // within the window (60 s by default) it is fine
    c["iat"] = (now() - 50).into();
    c["jti"] = random_jti().into();
    let r = client_credentials(&app, &[&key.sign_jws(&key.header(), &c)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn future_iat_is_refused() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let mut c = claims("POST", TOKEN_URL);
    c["iat"] = (now() + 30).into();
    let r = client_credentials(&app, &[&key.sign_jws(&key.header(), &c)]).await;
    assert_invalid_proof(&r, "future");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()});
    let c = claims("POST", TOKEN_URL);
    let unsigned = format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(c.to_string().as_bytes())
    );
    let r = client_credentials(&app, &[&unsigned]).await;
    assert_invalid_proof(&r, "\"none\" is not allowed");
}

#[tokio::test]
async fn hs256_is_refused() {
    use aws_lc_rs::hmac;
    let (_dir, _state, app) = app().await;
    let secret = b"a-shared-secret-of-thirty-two-by";
    let header =
        json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64(secret)}});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims("POST", TOKEN_URL).to_string().as_bytes())
    );
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    let r = client_credentials(&app, &[&format!("{input}.{}", b64(tag.as_ref()))]).await;
    assert_invalid_proof(&r, "\"HS256\" is not allowed");
}

#[tokio::test]
async fn private_key_in_jwk_is_refused() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let mut header = key.header();
    header["jwk"]["d"] = b64(&[7u8; 32]).into();
    let r = client_credentials(&app, &[&key.sign_jws(&header, &claims("POST", TOKEN_URL))]).await;
    assert_invalid_proof(&r, "private member \"d\"");
}

#[tokio::test]
async fn proof_signed_by_another_key_than_its_jwk_is_refused() {
    let (_dir, _state, app) = app().await;
    let (key, other) = (DpopKey::es256(), DpopKey::es256());
    let r = client_credentials(
        &app,
        &[&other.sign_jws(&key.header(), &claims("POST", TOKEN_URL))],
    )
    .await;
    assert_invalid_proof(&r, "signature");
}

#[tokio::test]
async fn wrong_typ_or_missing_jwk_is_refused() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let mut header = key.header();
    header["typ"] = "JWT".into();
    let r = client_credentials(&app, &[&key.sign_jws(&header, &claims("POST", TOKEN_URL))]).await;
    assert_invalid_proof(&r, "typ");
    let header = json!({"typ": "dpop+jwt", "alg": "ES256"});
    let r = client_credentials(&app, &[&key.sign_jws(&header, &claims("POST", TOKEN_URL))]).await;
    assert_invalid_proof(&r, "jwk");
    let r = client_credentials(&app, &["not-a-jws"]).await;
    assert_invalid_proof(&r, "compact JWS");
}

#[tokio::test]
async fn two_dpop_headers_are_refused() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let (a, b) = (key.proof("POST", TOKEN_URL), key.proof("POST", TOKEN_URL));
    let r = client_credentials(&app, &[&a, &b]).await;
    assert_invalid_proof(&r, "exactly one DPoP header");
    // neither was used up
    assert_eq!(client_credentials(&app, &[&a]).await.status, StatusCode::OK);
}

// ---- nonces ---------------------------------------------------------------------------------

fn assert_use_nonce(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["error"], "use_dpop_nonce", "{}", r.json);
    r.headers["dpop-nonce"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn nonce_required_by_the_server_without_nonce_gets_use_dpop_nonce() {
    let (_dir, _state, app) = app_with("[dpop]\nrequire_nonce = true").await;
    let key = DpopKey::es256();
    let nonce = assert_use_nonce(&client_credentials(&app, &[&key.proof("POST", TOKEN_URL)]).await);
    // the retry with the nonce succeeds, and the answer carries the nonce to use next
    let r = client_credentials(&app, &[&key.proof_with_nonce(&nonce)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["token_type"], "DPoP");
    assert_eq!(r.headers["dpop-nonce"].to_str().unwrap(), nonce);
}

#[tokio::test]
async fn wrong_nonce_gets_use_dpop_nonce() {
    let (_dir, _state, app) = app_with("[dpop]\nrequire_nonce = true").await;
    let key = DpopKey::es256();
    let nonce =
        assert_use_nonce(&client_credentials(&app, &[&key.proof_with_nonce("made-up")]).await);
    assert_ne!(nonce, "made-up");
    // a nonce from another IDP (another key-encryption key) is not accepted either
    let (_d2, _s2, other) = app_with("[dpop]\nrequire_nonce = true").await;
    let foreign =
        assert_use_nonce(&client_credentials(&other, &[&key.proof("POST", TOKEN_URL)]).await);
    assert_ne!(foreign, nonce);
    assert_use_nonce(&client_credentials(&app, &[&key.proof_with_nonce(&foreign)]).await);
}

#[tokio::test]
async fn nonce_required_for_one_client_only() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let r = send(
        &app,
        token_request(
            Some(NONCE_CLIENT),
            "grant_type=client_credentials",
            &[&key.proof("POST", TOKEN_URL)],
        ),
    )
    .await;
    let nonce = assert_use_nonce(&r);
    let r = send(
        &app,
        token_request(
            Some(NONCE_CLIENT),
            "grant_type=client_credentials",
            &[&key.proof_with_nonce(&nonce)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    // other clients need none
    let r = client_credentials(&app, &[&key.proof("POST", TOKEN_URL)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn replicas_on_one_key_encryption_key_accept_each_others_nonces() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = dpop_config("[dpop]\nrequire_nonce = true");
    let one = idp::app(state_with(&db, &cfg).await);
    let two = idp::app(state_with(&db, &cfg).await);
    let key = DpopKey::es256();
    let nonce = assert_use_nonce(&client_credentials(&one, &[&key.proof("POST", TOKEN_URL)]).await);
    let r = client_credentials(&two, &[&key.proof_with_nonce(&nonce)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

// ---- per-client requirement ---------------------------------------------------------------

#[tokio::test]
async fn mandatory_dpop_client_without_proof_is_refused() {
    let (_dir, _state, app) = app().await;
    let r = send(
        &app,
        token_request(Some(BOUND), "grant_type=client_credentials", &[]),
    )
    .await;
    assert_invalid_proof(&r, "must send a DPoP proof");
    let key = DpopKey::es256();
    let r = send(
        &app,
        token_request(
            Some(BOUND),
            "grant_type=client_credentials",
            &[&key.proof("POST", TOKEN_URL)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        payload(r.json["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
}

// ---- refresh tokens -------------------------------------------------------------------------

/// A code of public-app for alice, asked for with `extra` authorization parameters.
async fn public_code(state: &Arc<AppState>, extra: &str) -> String {
    let q = format!(
        "response_type=code&client_id=public-app&redirect_uri=app.example.native:/callback&scope=read&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
    );
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&q).unwrap();
    let req = validate(&state.settings, &params).unwrap();
    let now = now();
    let (_, session) =
        idp::oauth::sso::create(&*state.store, "alice-sub", &["pwd".to_owned()], now, 3600)
            .await
            .unwrap();
    let keys = state.keys();
    let url = respond(&state.grant_context(&keys), &req, &session, now)
        .await
        .unwrap();
    let parsed = url::Url::parse(&url).unwrap();
    parsed
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

fn public_redeem(code: &str, proofs: &[&str]) -> Request<Body> {
    token_request(
        None,
        &format!(
            "grant_type=authorization_code&client_id=public-app&code={code}&redirect_uri=app.example.native:/callback&code_verifier={VERIFIER}"
        ),
        proofs,
    )
}

fn public_refresh(refresh_token: &str, proofs: &[&str]) -> Request<Body> {
    token_request(
        None,
        &format!("grant_type=refresh_token&client_id=public-app&refresh_token={refresh_token}"),
        proofs,
    )
}

#[tokio::test]
async fn public_client_refresh_token_is_bound_to_the_key() {
    let (_dir, state, app) = app().await;
    let key = DpopKey::es256();
    let code = public_code(&state, "").await;
    let r = send(&app, public_redeem(&code, &[&key.proof("POST", TOKEN_URL)])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["token_type"], "DPoP");
    assert_eq!(
        payload(r.json["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
    let rt = r.json["refresh_token"].as_str().unwrap().to_owned();

    // the same key refreshes; the new refresh token is bound too
    let r = send(&app, public_refresh(&rt, &[&key.proof("POST", TOKEN_URL)])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        payload(r.json["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
    let rt2 = r.json["refresh_token"].as_str().unwrap().to_owned();
    let r = send(
        &app,
        public_refresh(&rt2, &[&DpopKey::es256().proof("POST", TOKEN_URL)]),
    )
    .await;
    assert_invalid_proof(&r, "bound to another DPoP key");
}

#[tokio::test]
async fn refresh_with_another_key_than_the_bound_refresh_token_is_refused() {
    let (_dir, state, app) = app().await;
    let key = DpopKey::es256();
    let code = public_code(&state, "").await;
    let r = send(&app, public_redeem(&code, &[&key.proof("POST", TOKEN_URL)])).await;
    let rt = r.json["refresh_token"].as_str().unwrap().to_owned();
    let thief = DpopKey::es256();
    let r = send(
        &app,
        public_refresh(&rt, &[&thief.proof("POST", TOKEN_URL)]),
    )
    .await;
    assert_invalid_proof(&r, "bound to another DPoP key");
    let r = send(&app, public_refresh(&rt, &[])).await;
    assert_invalid_proof(&r, "send a DPoP proof by its key");
    // the refused attempts neither used the token up nor ended the session
    let r = send(&app, public_refresh(&rt, &[&key.proof("POST", TOKEN_URL)])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn confidential_client_refresh_token_is_not_bound() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let r = send(
        &app,
        token_request(
            Some(DEMO),
            "grant_type=password&username=alice&password=alice-password-123&scope=read",
            &[&key.proof("POST", TOKEN_URL)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["token_type"], "DPoP");
    let rt = r.json["refresh_token"].as_str().unwrap().to_owned();
    // RFC 9449 §5: only public clients' refresh tokens are bound; a confidential client may
    // refresh with a new key (its access token is bound to that one) or none (Bearer).
    let other = DpopKey::es256();
    let r = send(
        &app,
        token_request(
            Some(DEMO),
            &format!("grant_type=refresh_token&refresh_token={rt}"),
            &[&other.proof("POST", TOKEN_URL)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        payload(r.json["access_token"].as_str().unwrap())["cnf"]["jkt"],
        other.jkt()
    );
    let rt = r.json["refresh_token"].as_str().unwrap().to_owned();
    let r = send(
        &app,
        token_request(
            Some(DEMO),
            &format!("grant_type=refresh_token&refresh_token={rt}"),
            &[],
        ),
    )
    .await;
    assert_eq!(r.json["token_type"], "Bearer", "{}", r.json);
}

// ---- dpop_jkt (authorization code binding, §10) -------------------------------------------

#[tokio::test]
async fn dpop_jkt_mismatch_at_code_redemption_is_refused() {
    let (_dir, state, app) = app().await;
    let key = DpopKey::es256();
    let code = public_code(&state, &format!("&dpop_jkt={}", key.jkt())).await;
    let r = send(
        &app,
        public_redeem(&code, &[&DpopKey::es256().proof("POST", TOKEN_URL)]),
    )
    .await;
    assert_invalid_proof(&r, "does not match the dpop_jkt");
    let r = send(&app, public_redeem(&code, &[])).await;
    assert_invalid_proof(&r, "send a DPoP proof by it");
    // the refusals rolled back: the right key still redeems the code
    let r = send(&app, public_redeem(&code, &[&key.proof("POST", TOKEN_URL)])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        payload(r.json["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
}

#[tokio::test]
async fn malformed_dpop_jkt_is_refused_at_the_authorization_endpoint() {
    let (_dir, state, _app) = app().await;
    let q = format!(
        "response_type=code&client_id=public-app&redirect_uri=app.example.native:/callback&code_challenge={CHALLENGE}&code_challenge_method=S256&dpop_jkt=short"
    );
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&q).unwrap();
    let e = validate(&state.settings, &params).unwrap_err();
    assert!(e.to_string().contains("dpop_jkt"), "{e}");
}

// ---- userinfo (RFC 9449 §7) ---------------------------------------------------------------

async fn alice_bound_token(app: &Router, key: &DpopKey) -> String {
    let r = send(
        app,
        token_request(
            Some(DEMO),
            "grant_type=password&username=alice&password=alice-password-123&scope=openid",
            &[&key.proof("POST", TOKEN_URL)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["access_token"].as_str().unwrap().to_owned()
}

fn userinfo(scheme: &str, token: &str, proof: Option<&str>) -> Request<Body> {
    let mut b =
        Request::get("/oauth2/userinfo").header(header::AUTHORIZATION, format!("{scheme} {token}"));
    if let Some(p) = proof {
        b = b.header("dpop", p);
    }
    b.body(Body::empty()).unwrap()
}

fn challenge(r: &Resp) -> String {
    r.headers[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn userinfo_accepts_a_bound_token_with_its_proof_and_refuses_it_as_bearer() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let at = alice_bound_token(&app, &key).await;
    let ok = send(
        &app,
        userinfo(
            "DPoP",
            &at,
            Some(&key.resource_proof("GET", USERINFO_URL, &at)),
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.headers);
    assert!(ok.json["sub"].is_string());

    let r = send(&app, userinfo("Bearer", &at, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&r).starts_with("DPoP algs=\"ES256 EdDSA Ed25519 PS256 RS256\""),
        "{}",
        challenge(&r)
    );
    assert!(challenge(&r).contains("error=\"invalid_token\""));

    for (what, proof) in [
        ("no proof", None),
        (
            "another key",
            Some(DpopKey::es256().resource_proof("GET", USERINFO_URL, &at)),
        ),
        ("no ath", Some(key.proof("GET", USERINFO_URL))),
        (
            "ath of another token",
            Some(key.resource_proof("GET", USERINFO_URL, "other")),
        ),
        (
            "wrong htm",
            Some(key.resource_proof("POST", USERINFO_URL, &at)),
        ),
        (
            "token endpoint's htu",
            Some(key.resource_proof("GET", TOKEN_URL, &at)),
        ),
    ] {
        let r = send(&app, userinfo("DPoP", &at, proof.as_deref())).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            challenge(&r).contains("error=\"invalid_dpop_proof\""),
            "{what}: {}",
            challenge(&r)
        );
    }
}

#[tokio::test]
async fn userinfo_asks_for_a_nonce_when_required() {
    let (_dir, _state, app) = app_with("[dpop]\nrequire_nonce = true").await;
    let key = DpopKey::es256();
    let nonce = assert_use_nonce(&client_credentials(&app, &[&key.proof("POST", TOKEN_URL)]).await);
    let r = send(
        &app,
        token_request(
            Some(DEMO),
            "grant_type=password&username=alice&password=alice-password-123&scope=openid",
            &[&key.proof_with_nonce(&nonce)],
        ),
    )
    .await;
    let at = r.json["access_token"].as_str().unwrap().to_owned();
    let r = send(
        &app,
        userinfo(
            "DPoP",
            &at,
            Some(&key.resource_proof("GET", USERINFO_URL, &at)),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&r).contains("error=\"use_dpop_nonce\""),
        "{}",
        challenge(&r)
    );
    let nonce = r.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let mut c = claims("GET", USERINFO_URL);
    c["ath"] = b64(&Sha256::digest(at.as_bytes())).into();
    c["nonce"] = nonce.into();
    let r = send(
        &app,
        userinfo("DPoP", &at, Some(&key.sign_jws(&key.header(), &c))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}
