//! Test token issuer: real ES256 / EdDSA signatures with fixed keys, so every test token is a real
//! JWS and each failure mode is one deliberate change to a valid token.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filter::config::FilterConfig;
use filter::jwk::KeySet;
use serde_json::{Value, json};
use signature::Signer;

pub const ISSUER: &str = "https://idp.example";
pub const AUDIENCE: &str = "demo-api";
pub const NOW: u64 = 1_800_000_000;

pub enum Key {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

pub struct TestIssuer {
    pub kid: String,
    pub key: Key,
}

impl TestIssuer {
    pub fn es256(seed: u8, kid: &str) -> Self {
        let key = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
        TestIssuer {
            kid: kid.into(),
            key: Key::Es256(key),
        }
    }

    pub fn eddsa(seed: u8, kid: &str) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        TestIssuer {
            kid: kid.into(),
            key: Key::EdDsa(key),
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.key {
            Key::Es256(_) => "ES256",
            Key::EdDsa(_) => "EdDSA",
        }
    }

    pub fn jwk(&self) -> Value {
        match &self.key {
            Key::Es256(k) => {
                let point = k.verifying_key().to_sec1_point(false);
                let bytes = point.as_bytes();
                json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
                       "x": b64(&bytes[1..33]), "y": b64(&bytes[33..65])})
            }
            Key::EdDsa(k) => json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": self.kid,
                                   "x": b64(k.verifying_key().as_bytes())}),
        }
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk()]})
    }

    pub fn key_set(&self) -> KeySet {
        KeySet::parse(self.jwks().to_string().as_bytes())
            .unwrap()
            .set
    }

    pub fn header(&self) -> Value {
        json!({"alg": self.alg(), "typ": "at+jwt", "kid": self.kid})
    }

    /// Signs any header and payload text as given (so malformed JSON can be signed too).
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = match &self.key {
            Key::Es256(k) => {
                let s: p256::ecdsa::Signature = k.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            Key::EdDsa(k) => k.sign(input.as_bytes()).to_bytes().to_vec(),
        };
        format!("{input}.{}", b64(&sig))
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    pub fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Claims of a valid access token at [`NOW`].
pub fn claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "client_id": "demo-client",
        "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 300, "jti": "jti-1", "sid": "sid-1",
        "scope": "read write"
    })
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
    merge(&mut base, extra);
    FilterConfig::from_json(base.to_string().as_bytes()).unwrap()
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (Value::Array(b), Value::Array(e)) => {
            for (i, v) in e.into_iter().enumerate() {
                match b.get_mut(i) {
                    Some(slot) => merge(slot, v),
                    None => b.push(v),
                }
            }
        }
        (b, e) => *b = e,
    }
}
