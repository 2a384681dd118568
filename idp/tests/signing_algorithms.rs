//! ES256, RS256 and EdDSA signing keys: tokens of each verify with the filter's own core (not
//! the library that signed them), the JWKS has the right key type and no private part, and a
//! rotation to another algorithm keeps tokens of the old key valid.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use serde_json::{Value, json};

fn header(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn jwks(app: &axum::Router) -> Value {
    send(
        app,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json
}

fn verify(jwks: &Value, algorithms: &[&str], token: &str) -> filter::verified::VerifiedToken {
    let c = json!({"providers": [{"issuer": ISSUER, "audiences": ["demo-api"], "algorithms": algorithms, "inline_jwks": jwks}]});
    let config = filter::config::FilterConfig::from_json(c.to_string().as_bytes()).unwrap();
    let keys = config.providers[0].inline_keys.clone().unwrap();
    let now = idp::state::unix_now().try_into().unwrap();
    filter::validate::validate(&config, &[&keys], token, now).unwrap()
}

#[tokio::test]
async fn each_algorithm_signs_tokens_the_filter_verifies() {
    for (alg, kty) in [("ES256", "EC"), ("RS256", "RSA"), ("EdDSA", "OKP")] {
        let dir = tempfile::tempdir().unwrap();
        let config = format!("signing_algorithm = \"{alg}\"\n{}", config());
        let state = state_with(&dir.path().join("db.sqlite"), &config).await;
        let app = idp::app(state);
        let at = token(&app, Some("read")).await;
        assert_eq!(header(&at)["alg"], alg);
        let keys = jwks(&app).await;
        let key = &keys["keys"][0];
        assert_eq!(
            (key["kty"].as_str(), key["alg"].as_str()),
            (Some(kty), Some(alg))
        );
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(key.get(private).is_none(), "{alg}: {private} published");
        }
        let v = verify(&keys, &[alg], &at);
        assert_eq!(v.sub.as_deref(), Some("client:demo-client"), "{alg}");
        // the filter's allow-list decides: the same token is refused where alg is not allowed
        let other = if alg == "ES256" { "RS256" } else { "ES256" };
        let c = json!({"providers": [{"issuer": ISSUER, "audiences": ["demo-api"], "algorithms": [other], "inline_jwks": keys}]});
        let config = filter::config::FilterConfig::from_json(c.to_string().as_bytes()).unwrap();
        let ks = config.providers[0].inline_keys.clone().unwrap();
        let now = idp::state::unix_now().try_into().unwrap();
        assert!(filter::validate::validate(&config, &[&ks], &at, now).is_err());
        // discovery names the algorithm
        let meta = send(
            &app,
            Request::get("/.well-known/openid-configuration")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .json;
        assert_eq!(meta["id_token_signing_alg_values_supported"], json!([alg]));
        // introspection (the IDP's own check) accepts it
        let r = send(
            &app,
            form(
                "/oauth2/introspect",
                Some(basic(GATEWAY)),
                &format!("token={at}"),
            ),
        )
        .await;
        assert_eq!(r.json["active"], true, "{alg}");
    }
}

#[tokio::test]
async fn rotating_to_another_algorithm_keeps_old_tokens_valid() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_at(&dir.path().join("db.sqlite")).await;
    let app = idp::app(state.clone());
    let old = token(&app, None).await;
    let now = idp::state::unix_now();
    idp::keys::schedule_rotation(&*state.store, idp::keys::SigningAlg::EdDsa, now, 0)
        .await
        .unwrap();
    state.refresh_keys().await.unwrap();
    let new = token(&app, None).await;
    assert_eq!(header(&new)["alg"], "EdDSA");
    let keys = jwks(&app).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    verify(&keys, &["ES256", "EdDSA"], &old);
    verify(&keys, &["ES256", "EdDSA"], &new);
}

#[tokio::test]
async fn an_unknown_algorithm_is_refused_with_the_field_named() {
    let e = idp::settings::RawSettings::from_toml("signing_algorithm = \"HS256\"")
        .unwrap()
        .validate(&idp::settings::Overrides::default())
        .unwrap_err();
    assert_eq!(e.field, "signing_algorithm");
}
