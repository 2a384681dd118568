//! Test issuer and configurations for driving the real filter: fixed ES256 keys, real JWS
//! signatures, so each failure mode is one deliberate change to a valid token.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use host_test::{Envoy, EnvoyOptions, Host, Response};
use serde_json::{Value, json};
use signature::Signer;
use std::time::Duration;

pub const ISSUER: &str = "http://127.0.0.1:9000";
pub const AUDIENCE: &str = "demo-api";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

pub struct Issuer {
    pub kid: String,
    pub key: p256::ecdsa::SigningKey,
}

impl Issuer {
    pub fn es256(seed: u8, kid: &str) -> Self {
        Issuer {
            kid: kid.to_owned(),
            key: p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap(),
        }
    }

    pub fn jwk(&self) -> Value {
        let point = self.key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
               "x": b64(&bytes[1..33]), "y": b64(&bytes[33..65])})
    }

    pub fn jwks(&self) -> String {
        json!({"keys": [self.jwk()]}).to_string()
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig: p256::ecdsa::Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    }

    pub fn token(&self, claims: &Value) -> String {
        self.sign(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid}),
            claims,
        )
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Claims of a valid access token at `now` (seconds).
pub fn claims(now: u64) -> Value {
    json!({
        "iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "client_id": "demo-client",
        "iat": now - 10, "nbf": now - 10, "exp": now + 300, "jti": "jti-1", "sid": "sid-1",
        "scope": "read write"
    })
}

/// One provider fetching its JWKS from cluster `idp`.
pub fn config() -> Value {
    json!({
        "providers": [{
            "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"cluster": "idp", "path": JWKS_PATH, "refresh_seconds": 60}
        }]
    })
}

/// The compiled filter (once per test binary).
pub fn host() -> Host {
    match Host::filter() {
        Ok(host) => host,
        Err(e) => panic!("{e}"),
    }
}

pub fn envoy_with(config: &Value, workers: usize) -> Envoy {
    host()
        .envoy(
            EnvoyOptions::new()
                .workers(workers)
                .plugin_name("oauth2-gateway")
                .clusters(["idp", "resource-server"])
                .plugin_config(config.to_string()),
        )
        .unwrap()
}

/// An Envoy whose filter has fetched `issuer`'s JWKS (the first tick's fetch, answered).
pub fn ready_envoy(issuer: &Issuer, workers: usize) -> Envoy {
    let mut envoy = envoy_with(&config(), workers);
    envoy.advance(Duration::from_secs(1)).unwrap();
    let answered = envoy
        .respond_all("idp", &Response::json(200, issuer.jwks()))
        .unwrap();
    assert_eq!(answered, 1, "one JWKS fetch for the whole Envoy");
    envoy
}
