//! The authorization_code grant with PKCE: codes issued by the domain (as the browser side does
//! after login), redeemed through the real token endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::Router;
use common::*;
use idp::AppState;
use idp::oauth::authorization::{ValidRequest, respond, validate};
use serde_json::{Value, json};
use std::sync::Arc;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:8080/callback";
const ALICE_SUB: &str = "alice-sub";

fn request(state: &AppState, query: &str) -> ValidRequest {
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    validate(&state.settings, &params).unwrap()
}

fn demo_request(state: &AppState, pkce: bool) -> ValidRequest {
    let mut q = format!(
        "response_type=code&client_id=demo-client&redirect_uri={REDIRECT}&state=s1&scope=read"
    );
    if pkce {
        q.push_str(&format!(
            "&code_challenge={CHALLENGE}&code_challenge_method=S256"
        ));
    }
    request(state, &q)
}

/// Issues a code as the browser side would once alice logged in; returns the code.
async fn code_for(state: &Arc<AppState>, req: &ValidRequest, now: i64) -> String {
    let (_, session) =
        idp::oauth::sso::create(&*state.store, ALICE_SUB, &["pwd".to_owned()], now, 3600)
            .await
            .unwrap();
    let keys = state.keys();
    let url = respond(&state.grant_context(&keys), req, &session, now)
        .await
        .unwrap();
    let parsed = url::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(q.get("state").map(String::as_str), req.state.as_deref());
    assert_eq!(q["iss"], ISSUER, "RFC 9207 iss");
    assert!(url.starts_with(&req.redirect_uri));
    q["code"].clone()
}

async fn redeem(app: &Router, auth: Option<(&str, &str)>, body: &str) -> Resp {
    let (header, body) = match auth {
        Some(creds) => (Some(basic(creds)), body.to_owned()),
        None => (None, format!("{body}&client_id=public-app")),
    };
    send(
        app,
        form(
            "/oauth2/token",
            header,
            &format!("grant_type=authorization_code&{body}"),
        ),
    )
    .await
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

async fn introspect(app: &Router, token: &str) -> Value {
    send(
        app,
        form(
            "/oauth2/introspect",
            Some(basic(GATEWAY)),
            &format!("token={token}"),
        ),
    )
    .await
    .json
}

async fn refresh(app: &Router, rt: &str) -> Resp {
    send(
        app,
        form(
            "/oauth2/token",
            Some(basic(DEMO)),
            &format!("grant_type=refresh_token&refresh_token={rt}"),
        ),
    )
    .await
}

#[tokio::test]
async fn code_with_pkce_gives_tokens_once_and_a_replay_revokes_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_at(&dir.path().join("db.sqlite")).await;
    let app = idp::app(state.clone());
    let now = idp::http::state::unix_now();
    let code = code_for(&state, &demo_request(&state, true), now).await;
    let body = format!("code={code}&redirect_uri={REDIRECT}&code_verifier={VERIFIER}");

    let r = redeem(&app, Some(DEMO), &body).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.headers["cache-control"], "no-store");
    let at = r.json["access_token"].as_str().unwrap().to_owned();
    let rt = r.json["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(r.json["scope"], "read");
    let c = claims(&at);
    assert_eq!(
        (&c["sub"], &c["client_id"], &c["amr"], &c["scope"]),
        (
            &json!(ALICE_SUB),
            &json!("demo-client"),
            &json!(["pwd"]),
            &json!("read")
        )
    );
    // the gateway's own validation accepts it
    let jwks = send(
        &app,
        axum::http::Request::get("/.well-known/jwks.json")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .json;
    let config = filter_config(&jwks);
    let keys = config.providers[0].inline_keys.clone().unwrap();
    let v = filter::validation::validate(&config, &[&keys], &at, now.try_into().unwrap()).unwrap();
    assert_eq!(v.sub.as_deref(), Some(ALICE_SUB));
    assert_eq!(introspect(&app, &at).await["active"], true);

    // the refresh token works (and rotates)
    let r2 = refresh(&app, &rt).await;
    assert_eq!(r2.status, 200, "{}", r2.json);
    let at2 = r2.json["access_token"].as_str().unwrap().to_owned();
    let rt2 = r2.json["refresh_token"].as_str().unwrap().to_owned();

    // the replay: refused, and every token issued from the code dies
    let replay = redeem(&app, Some(DEMO), &body).await;
    assert_eq!(replay.json["error"], "invalid_grant", "{}", replay.json);
    for t in [&at, &at2] {
        assert_eq!(introspect(&app, t).await, json!({"active": false}));
    }
    assert_eq!(refresh(&app, &rt2).await.json["error"], "invalid_grant");
    let feed = send(
        &app,
        axum::http::Request::get("/oauth2/revocations")
            .header("authorization", basic(GATEWAY))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .json;
    assert!(
        feed["revoked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["sid"] == c["sid"]),
        "{feed}"
    );
}

#[tokio::test]
async fn a_refused_redemption_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_at(&dir.path().join("db.sqlite")).await;
    let app = idp::app(state.clone());
    let now = idp::http::state::unix_now();
    let code = code_for(&state, &demo_request(&state, true), now).await;
    let good = format!("code={code}&redirect_uri={REDIRECT}&code_verifier={VERIFIER}");
    let wrong_verifier = "x".repeat(43);
    let cases = [
        // PKCE mismatch, missing verifier, malformed verifier
        (
            Some(DEMO),
            format!("code={code}&redirect_uri={REDIRECT}&code_verifier={wrong_verifier}"),
            "invalid_grant",
        ),
        (
            Some(DEMO),
            format!("code={code}&redirect_uri={REDIRECT}"),
            "invalid_grant",
        ),
        (
            Some(DEMO),
            format!("code={code}&redirect_uri={REDIRECT}&code_verifier=short"),
            "invalid_grant",
        ),
        // bound to the redirect_uri and to the client
        (
            Some(DEMO),
            format!(
                "code={code}&redirect_uri=http://127.0.0.1:8080/other&code_verifier={VERIFIER}"
            ),
            "invalid_grant",
        ),
        (
            Some(DEMO),
            format!("code={code}&code_verifier={VERIFIER}"),
            "invalid_request",
        ),
        (
            None,
            format!("code={code}&redirect_uri={REDIRECT}&code_verifier={VERIFIER}"),
            "invalid_grant",
        ),
        (
            Some(DEMO),
            format!("redirect_uri={REDIRECT}&code_verifier={VERIFIER}"),
            "invalid_request",
        ),
        (
            Some(DEMO),
            format!("code=nope&redirect_uri={REDIRECT}&code_verifier={VERIFIER}"),
            "invalid_grant",
        ),
        (
            Some(DEMO),
            format!("{good}&code_verifier={VERIFIER}"),
            "invalid_request",
        ),
        // a client that may not use the grant
        (Some(GATEWAY), good.clone(), "unauthorized_client"),
    ];
    for (i, (auth, body, error)) in cases.iter().enumerate() {
        let r = redeem(&app, *auth, body).await;
        assert_eq!(r.json["error"], *error, "case {i}: {}", r.json);
    }
    // none of those consumed the code
    let r = redeem(&app, Some(DEMO), &good).await;
    assert_eq!(r.status, 200, "{}", r.json);
}

#[tokio::test]
async fn pkce_downgrade_and_expiry_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_at(&dir.path().join("db.sqlite")).await;
    let app = idp::app(state.clone());
    let now = idp::http::state::unix_now();
    // a code issued without a challenge (a confidential client may omit PKCE)...
    let code = code_for(&state, &demo_request(&state, false), now).await;
    // ...is refused with a verifier (downgrade), and accepted without
    let r = redeem(
        &app,
        Some(DEMO),
        &format!("code={code}&redirect_uri={REDIRECT}&code_verifier={VERIFIER}"),
    )
    .await;
    assert_eq!(r.json["error"], "invalid_grant", "{}", r.json);
    let r = redeem(
        &app,
        Some(DEMO),
        &format!("code={code}&redirect_uri={REDIRECT}"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);

    // valid for 60 s by default
    let old = code_for(&state, &demo_request(&state, true), now - 61).await;
    let r = redeem(
        &app,
        Some(DEMO),
        &format!("code={old}&redirect_uri={REDIRECT}&code_verifier={VERIFIER}"),
    )
    .await;
    assert_eq!(r.json["error"], "invalid_grant", "{}", r.json);
}

#[tokio::test]
async fn a_public_client_redeems_with_pkce_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_at(&dir.path().join("db.sqlite")).await;
    let app = idp::app(state.clone());
    let now = idp::http::state::unix_now();
    let redirect = "app.example.native:/callback";
    let q = format!(
        "response_type=code&client_id=public-app&redirect_uri={redirect}&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let req = request(&state, &q);
    let code = code_for(&state, &req, now).await;
    // a public client cannot pretend to be confidential, nor skip the verifier
    let r = redeem(&app, None, &format!("code={code}&redirect_uri={redirect}")).await;
    assert_eq!(r.json["error"], "invalid_grant");
    let r = redeem(
        &app,
        None,
        &format!("code={code}&redirect_uri={redirect}&code_verifier={VERIFIER}"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.json["refresh_token"].is_string());
    assert_eq!(
        claims(r.json["access_token"].as_str().unwrap())["client_id"],
        "public-app"
    );
}
