//! DPoP (RFC 9449) bindings through the real router: a client that must use DPoP, refresh
//! tokens bound to a public client's key, `dpop_jkt` binding a code, and userinfo with a bound
//! token (`Authorization: DPoP` and a proof with `ath`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::dpop::*;
use common::dpop_app::*;
use common::*;
use idp::AppState;
use idp::oauth::authorization::{respond, validate};
use sha2::{Digest, Sha256};
use std::sync::Arc;

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
