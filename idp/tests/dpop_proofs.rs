//! DPoP (RFC 9449) proofs at the token endpoint, through the real router on a real SQLite
//! file: a valid proof binds the token (`cnf.jkt`, `token_type: DPoP`); one named test per way
//! a proof can be wrong; server nonces. Proofs are made by hand (`common::dpop`) so that each can
//! be broken on purpose.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::dpop::*;
use common::dpop_app::*;
use common::*;
use serde_json::json;

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
async fn rs256_and_ps256_proofs_are_accepted() {
    let (_dir, _state, app) = app().await;
    for pss in [false, true] {
        let key = DpopKey::rsa(pss);
        let r = client_credentials(&app, &[&key.proof("POST", TOKEN_URL)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", key.alg(), r.json);
        assert_eq!(
            payload(r.json["access_token"].as_str().unwrap())["cnf"]["jkt"],
            key.jkt()
        );
    }
    // a PKCS#1 v1.5 signature does not pass as PS256
    let key = DpopKey::rsa(false);
    let mut header = key.header();
    header["alg"] = "PS256".into();
    let r = client_credentials(&app, &[&key.sign_jws(&header, &claims("POST", TOKEN_URL))]).await;
    assert_invalid_proof(&r, "signature");
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
    assert_invalid_proof(&r, "'none' is not allowed");
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
    assert_invalid_proof(&r, "'HS256' is not allowed");
}

#[tokio::test]
async fn private_key_in_jwk_is_refused() {
    let (_dir, _state, app) = app().await;
    let key = DpopKey::es256();
    let mut header = key.header();
    header["jwk"]["d"] = b64(&[7u8; 32]).into();
    let r = client_credentials(&app, &[&key.sign_jws(&header, &claims("POST", TOKEN_URL))]).await;
    assert_invalid_proof(&r, "private member 'd'");
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
