//! OpenID Connect conformance checked by independent code: the live discovery document through
//! Authlib's `OpenIDProviderMetadata.validate()` (Python, from the project's `.venv`), and RS256
//! ID tokens for the clients that ask for them (`id_token_signed_response_alg`), verified with
//! the published JWK.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

const RP_RS256: (&str, &str) = ("rp-rs256", "rp-rs256-secret-0123456789abcdef0123");

fn conformance_config() -> String {
    let h = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    format!(
        "{}\n[[clients]]\nid = \"{}\"\nsecret_sha256 = \"{}\"\nscopes = [\"openid\", \"read\"]\naudiences = [\"demo-api\"]\ngrant_types = [\"password\"]\nid_token_signed_response_alg = \"RS256\"\n[[clients]]\nid = \"rp-default\"\nsecret_sha256 = \"{}\"\nscopes = [\"openid\"]\naudiences = [\"demo-api\"]\ngrant_types = [\"password\"]\n",
        config(),
        RP_RS256.0,
        h(RP_RS256.1),
        h(RP_RS256.1),
    )
}

fn part(jwt: &str, i: usize) -> Value {
    let p = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

async fn id_token_for(app: &axum::Router, client: (&str, &str)) -> (String, String) {
    let body = "grant_type=password&username=alice&password=alice-password-123&scope=openid";
    let r = send(app, form("/oauth2/token", Some(basic(client)), body)).await;
    assert_eq!(r.status, 200, "{}", r.json);
    (
        r.json["access_token"].as_str().unwrap().to_owned(),
        r.json["id_token"].as_str().unwrap().to_owned(),
    )
}

async fn get(app: &axum::Router, path: &str) -> Value {
    send(app, Request::get(path).body(Body::empty()).unwrap())
        .await
        .json
}

#[tokio::test]
async fn clients_that_ask_for_rs256_get_rs256_id_tokens() {
    // Conformance 9 (issue 20): only the active key's algorithm (ES256 by default) signed ID
    // tokens, so relying parties that only do RS256 (the OIDC default) could not use the IDP.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let app = idp::app(state_with(&db, &conformance_config()).await);
    let (at, id) = id_token_for(&app, RP_RS256).await;
    let header = part(&id, 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        part(&at, 0)["alg"],
        "ES256",
        "access tokens keep the active key"
    );
    // the ID token verifies with the published RSA key of its kid
    let jwks = get(&app, "/.well-known/jwks.json").await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("kid {} not published: {jwks}", header["kid"]));
    assert_eq!(
        (jwk["kty"].as_str(), jwk["alg"].as_str()),
        (Some("RSA"), Some("RS256"))
    );
    assert!(jwk.get("d").is_none());
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[RP_RS256.0]);
    validation.set_issuer(&[ISSUER]);
    let claims = jsonwebtoken::decode::<Value>(&id, &key, &validation)
        .unwrap()
        .claims;
    // at_hash: the left half of SHA-256 (RS256's hash) of the access token
    let digest = Sha256::digest(at.as_bytes());
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));
    // a client that does not ask gets the active key's algorithm
    let (_, other) = id_token_for(&app, ("rp-default", RP_RS256.1)).await;
    assert_eq!(part(&other, 0)["alg"], "ES256");
    let meta = get(&app, "/.well-known/openid-configuration").await;
    assert_eq!(
        meta["id_token_signing_alg_values_supported"],
        json!(["ES256", "RS256"])
    );
    // a restart keeps the same RS256 key (no new key per start)
    drop(app);
    let again = idp::app(state_with(&db, &conformance_config()).await);
    assert_eq!(get(&again, "/.well-known/jwks.json").await, jwks);
    let (_, id2) = id_token_for(&again, RP_RS256).await;
    assert_eq!(part(&id2, 0)["kid"], header["kid"]);
}

#[test]
fn a_client_may_ask_for_rs256_or_the_signing_algorithm_only() {
    let text = format!(
        "{}\n[[clients]]\nid = \"x\"\nid_token_signed_response_alg = \"EdDSA\"\n",
        config()
    );
    let e = idp::settings::RawSettings::from_toml(&text)
        .unwrap()
        .validate(&idp::settings::Overrides::default())
        .unwrap_err();
    assert_eq!(e.field, "clients[3].id_token_signed_response_alg");
}

/// The project's Python (`.venv`, where `scripts/test` installs Authlib), or `IDP_TEST_PYTHON`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("IDP_TEST_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python at {}: run scripts/test once (it creates .venv and installs Authlib), or set IDP_TEST_PYTHON",
        venv.display()
    );
    venv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_accepts_the_live_discovery_document() {
    // Conformance 9 (issue 20): Authlib refused the metadata (RS256 missing from
    // id_token_signing_alg_values_supported). Authlib requires an https issuer: the issuer is
    // only a name here, the server listens on loopback http.
    let dir = tempfile::tempdir().unwrap();
    let overrides = idp::settings::Overrides {
        database: Some(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("db.sqlite").display()
        )),
        issuer: Some("https://idp.example.test".into()),
        ..Default::default()
    };
    let settings = idp::settings::RawSettings::from_toml(&config())
        .unwrap()
        .validate(&overrides)
        .unwrap();
    let state = idp::AppState::open(settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, idp::app(state)).await.unwrap();
    });
    let url = format!("http://{addr}/.well-known/openid-configuration");
    let python = python();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/authlib_metadata.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .arg(&url)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()))
    })
    .await
    .unwrap();
    server.abort();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid"),
        Some(3) => panic!(
            "Authlib is missing from the project's Python ({stderr}): run scripts/test, which installs it (ensure_pip_pkg authlib)"
        ),
        _ => panic!("Authlib refused the discovery document: {stderr}"),
    }
}
