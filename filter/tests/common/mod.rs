//! The filter's test fixtures: the shared test issuer (`test-support`: real ES256 / EdDSA
//! signatures with fixed keys, so each failure mode is one deliberate change to a valid token),
//! the issuer and time these tests use, and configurations.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use filter::config::FilterConfig;
use filter::jose::jwk::KeySet;
use serde_json::{Value, json};
pub use test_support::{Issuer, b64};

pub const ISSUER: &str = "https://idp.example";
pub const AUDIENCE: &str = "demo-api";
pub const NOW: u64 = 1_800_000_000;

/// The filter's parsed form of a test issuer's JWKS.
pub trait KeySetOf {
    fn key_set(&self) -> KeySet;
}

impl KeySetOf for Issuer {
    fn key_set(&self) -> KeySet {
        KeySet::parse(self.jwks().to_string().as_bytes())
            .unwrap()
            .set
    }
}

/// Claims of a valid access token at [`NOW`].
pub fn claims() -> Value {
    test_support::access_token_claims(ISSUER, AUDIENCE, NOW)
}

/// A configuration with one provider (ES256 + EdDSA allowed, inline keys are supplied per test).
pub fn config_with(extra: Value) -> FilterConfig {
    let mut base = json!({
        "providers": [{
            "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
            "algorithms": ["ES256"], "leeway_seconds": 30,
            "jwks": {"cluster": "idp", "path": "/.well-known/jwks.json"}
        }]
    });
    test_support::merge(&mut base, extra);
    FilterConfig::from_json(base.to_string().as_bytes()).unwrap()
}
