//! Configurations and Envoys for driving the real filter, with the shared test issuer
//! (`test-support`: fixed ES256 keys, real JWS signatures, so each failure mode is one deliberate
//! change to a valid token).
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use host_test::{Envoy, EnvoyOptions, Host, Response};
use serde_json::{Value, json};
use std::time::Duration;
pub use test_support::{Issuer, b64, jwks};

pub const ISSUER: &str = "http://127.0.0.1:9000";
pub const AUDIENCE: &str = "demo-api";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Claims of a valid access token at `now` (seconds).
pub fn claims(now: u64) -> Value {
    test_support::access_token_claims(ISSUER, AUDIENCE, now)
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
        .respond_all("idp", &Response::json(200, issuer.jwks().to_string()))
        .unwrap();
    assert_eq!(answered, 1, "one JWKS fetch for the whole Envoy");
    envoy
}
