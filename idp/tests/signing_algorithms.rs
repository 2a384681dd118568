//! ES256, RS256 and EdDSA signing keys: tokens of each verify with the filter's own core (not
//! the library that signed them), the JWKS has the right key type and no private part, and a
//! rotation to another algorithm keeps tokens of the old key valid.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use idp::settings::SigningAlg;
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

fn verify(
    jwks: &Value,
    algorithms: &[&str],
    token: &str,
) -> filter::validation::verified_token::VerifiedToken {
    let c = json!({"providers": [{"issuer": ISSUER, "audiences": ["demo-api"], "algorithms": algorithms, "inline_jwks": jwks}]});
    let config = filter::config::FilterConfig::from_json(c.to_string().as_bytes()).unwrap();
    let keys = config.providers[0].inline_keys.clone().unwrap();
    let now = idp::http::state::unix_now().try_into().unwrap();
    filter::validation::validate(&config, &[&keys], token, now).unwrap()
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
        let now = idp::http::state::unix_now().try_into().unwrap();
        assert!(filter::validation::validate(&config, &[&ks], &at, now).is_err());
        // discovery names the algorithm
        let meta = send(
            &app,
            Request::get("/.well-known/openid-configuration")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .json;
        // discovery names the algorithm, and RS256, which every client may ask for
        let mut expected = vec![alg, "RS256"];
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(
            meta["id_token_signing_alg_values_supported"],
            json!(expected)
        );
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
    let now = idp::http::state::unix_now();
    idp::oauth::keys::schedule_rotation(
        &*state.store,
        state.kek(),
        idp::oauth::keys::SigningAlg::EdDsa,
        now,
        0,
    )
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

/// The stored private parts of the signing keys of the database at `db`, read with SQL.
async fn stored_private_keys(db: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    use sqlx::Row;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows = sqlx::query("SELECT kid, private_der FROM signing_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| (r.get("kid"), r.get("private_der")))
        .collect()
}

fn is_pkcs8(bytes: &[u8]) -> bool {
    pkcs8::PrivateKeyInfo::try_from(bytes).is_ok()
}

#[tokio::test]
async fn signing_keys_are_encrypted_at_rest() {
    // Defect 8 (issue 20): private keys were stored as plaintext PKCS#8, so a copy of the
    // database was a copy of the signing keys.
    for alg in ["ES256", "RS256", "EdDSA"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let config = format!("signing_algorithm = \"{alg}\"\n{}", config());
        let state = state_with(&db, &config).await;
        let at = token(&idp::app(state.clone()), None).await;
        drop(state);
        let stored = stored_private_keys(&db).await;
        assert_eq!(stored.len(), 1);
        for (kid, blob) in &stored {
            assert!(!is_pkcs8(blob), "{alg} key {kid} is stored in the clear");
            assert_eq!(header(&at)["kid"], kid.as_str());
        }
        // with no key configured, one was generated next to the database (owner-only)
        let kek = dir.path().join("idp-key-encryption.key");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kek).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{alg}");
        // ...and a restart opens the keys with it
        let again = state_with(&db, &config).await;
        let at2 = token(&idp::app(again), None).await;
        assert_eq!(header(&at2)["kid"], header(&at)["kid"]);
    }
}

#[tokio::test]
async fn an_older_database_with_plaintext_keys_is_encrypted_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let state = state_at(&db).await;
    let app = idp::app(state.clone());
    let old_token = token(&app, None).await;
    // make it a database of the previous version: every private key back in plaintext
    let mut tx = state.store.begin().await.unwrap();
    for (kid, sealed) in tx.private_keys().await.unwrap() {
        let plain = state.kek().open(&kid, &sealed).unwrap();
        assert!(is_pkcs8(&plain));
        tx.set_private_key(&kid, &plain).await.unwrap();
    }
    tx.commit().await.unwrap();
    drop((app, state));
    assert!(
        stored_private_keys(&db)
            .await
            .iter()
            .all(|(_, b)| is_pkcs8(b))
    );
    // the next start migrates them and keeps signing with the same key
    let state = state_at(&db).await;
    assert!(
        stored_private_keys(&db)
            .await
            .iter()
            .all(|(_, b)| !is_pkcs8(b))
    );
    let app = idp::app(state);
    let new_token = token(&app, None).await;
    assert_eq!(header(&new_token)["kid"], header(&old_token)["kid"]);
    let r = send(
        &app,
        form(
            "/oauth2/introspect",
            Some(basic(GATEWAY)),
            &format!("token={old_token}"),
        ),
    )
    .await;
    assert_eq!(r.json["active"], true, "{}", r.json);
}

#[tokio::test]
async fn a_wrong_key_encryption_key_stops_the_start_and_rotate_key_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let settings = |kek: &str| {
        let overrides = idp::settings::Overrides {
            database: Some(format!("sqlite://{}?mode=rwc", db.display())),
            key_encryption_key: Some(idp::settings::RedactedString(kek.to_owned())),
            ..Default::default()
        };
        idp::settings::RawSettings::from_toml(&config())
            .unwrap()
            .validate(&overrides)
            .unwrap()
    };
    let right = "11".repeat(32);
    drop(idp::AppState::open(settings(&right)).await.unwrap());
    assert!(
        !dir.path().join("idp-key-encryption.key").exists(),
        "a configured key: nothing generated"
    );
    let e = match idp::AppState::open(settings(&"22".repeat(32))).await {
        Ok(_) => panic!("opened with the wrong key-encryption key"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("wrong key-encryption key"), "{e}");
    // `idp rotate-key` with the wrong key adds nothing (a key sealed with it could never sign)
    let e = idp::cli::rotate_key(&settings(&"22".repeat(32)), SigningAlg::Es256, 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("wrong key-encryption key"), "{e}");
    assert_eq!(stored_private_keys(&db).await.len(), 1, "nothing added");
    assert!(idp::AppState::open(settings(&right)).await.is_ok());
    idp::cli::rotate_key(&settings(&right), SigningAlg::Es256, 0)
        .await
        .unwrap();
    assert_eq!(stored_private_keys(&db).await.len(), 2);
}
