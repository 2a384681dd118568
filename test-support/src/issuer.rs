//! A signing key with its `kid`: JWKs, JWS compact tokens and raw signatures.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use signature::Signer;

/// A seed that gives no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// `[seed; 32]` is not a P-256 private scalar (0, or not below the group order: 0 and 255).
    #[error("seed {0} gives no P-256 key ([seed; 32] must be a non-zero scalar below the order)")]
    Es256Seed(u8),
}

enum Key {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

/// A test issuer's signing key: ES256 or EdDSA, derived from a seed.
pub struct Issuer {
    kid: String,
    key: Key,
}

/// Base64url without padding, as JWS uses it.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWKS document with the public keys of `issuers`, in order (key rotation: old and new).
pub fn jwks(issuers: &[&Issuer]) -> Value {
    json!({"keys": issuers.iter().map(|i| i.jwk()).collect::<Vec<_>>()})
}

impl Issuer {
    /// An ES256 (P-256) key with private scalar `[seed; 32]`; seeds 0 and 255 give none.
    pub fn try_es256(seed: u8, kid: &str) -> Result<Self, KeyError> {
        let key = p256::ecdsa::SigningKey::from_slice(&[seed; 32])
            .map_err(|_| KeyError::Es256Seed(seed))?;
        Ok(Issuer {
            kid: kid.to_owned(),
            key: Key::Es256(key),
        })
    }

    /// [`Issuer::try_es256`] for tests, which name their seeds.
    ///
    /// # Panics
    ///
    /// With seed 0 or 255, which give no P-256 key.
    #[allow(clippy::panic)] // test code: a seed is a literal in the test
    pub fn es256(seed: u8, kid: &str) -> Self {
        match Self::try_es256(seed, kid) {
            Ok(issuer) => issuer,
            Err(e) => panic!("{e}"),
        }
    }

    /// An EdDSA (Ed25519) key with seed `[seed; 32]` (every seed gives one).
    pub fn eddsa(seed: u8, kid: &str) -> Self {
        Issuer {
            kid: kid.to_owned(),
            key: Key::EdDsa(ed25519_dalek::SigningKey::from_bytes(&[seed; 32])),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS `alg`: `ES256` or `EdDSA`.
    pub fn alg(&self) -> &'static str {
        match self.key {
            Key::Es256(_) => "ES256",
            Key::EdDsa(_) => "EdDSA",
        }
    }

    /// The public key as a JWK (`use: sig`; `alg` too for ES256).
    pub fn jwk(&self) -> Value {
        match &self.key {
            Key::Es256(k) => {
                let point = k.verifying_key().to_sec1_point(false);
                // uncompressed SEC1: 0x04, then x and y, 32 bytes each
                let bytes = point.as_bytes();
                let (x, y) = (bytes.get(1..33), bytes.get(33..65));
                json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
                       "x": b64(x.unwrap_or_default()), "y": b64(y.unwrap_or_default())})
            }
            Key::EdDsa(k) => json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": self.kid,
                                   "x": b64(k.verifying_key().as_bytes())}),
        }
    }

    /// A JWKS document with this key only.
    pub fn jwks(&self) -> Value {
        jwks(&[self])
    }

    /// The header of an access token signed by this key: `alg`, `typ: at+jwt`, `kid`.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg(), "typ": "at+jwt", "kid": self.kid})
    }

    /// The raw JWS signature of `signing_input` (ES256: `r || s`, 64 bytes; EdDSA: 64 bytes).
    pub fn signature(&self, signing_input: &[u8]) -> Vec<u8> {
        match &self.key {
            Key::Es256(k) => {
                let s: p256::ecdsa::Signature = k.sign(signing_input);
                s.to_bytes().to_vec()
            }
            Key::EdDsa(k) => k.sign(signing_input).to_bytes().to_vec(),
        }
    }

    /// Signs any header and payload text as given (so malformed JSON can be signed too).
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let signature = self.signature(input.as_bytes());
        format!("{input}.{}", b64(&signature))
    }

    /// A JWS compact token of `header` and `claims`.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// An access token with [`Issuer::header`] and `claims`.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;

    fn parts(token: &str) -> Vec<Vec<u8>> {
        token
            .split('.')
            .map(|p| URL_SAFE_NO_PAD.decode(p).unwrap())
            .collect()
    }

    #[test]
    fn es256_tokens_verify_with_the_published_key() {
        let idp = Issuer::es256(7, "k1");
        let token = idp.token(&json!({"sub": "alice"}));
        let p = parts(&token);
        assert_eq!(
            serde_json::from_slice::<Value>(&p[0]).unwrap(),
            json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"})
        );
        let jwk = idp.jwk();
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
        let sec1 = [&[4u8][..], &x, &y].concat();
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
        let signature = p256::ecdsa::Signature::from_slice(&p[2]).unwrap();
        let input = token.rsplit_once('.').unwrap().0;
        assert!(key.verify(input.as_bytes(), &signature).is_ok());
        assert!(key.verify(b"other", &signature).is_err());
    }

    #[test]
    fn eddsa_tokens_verify_with_the_published_key() {
        let idp = Issuer::eddsa(9, "e1");
        assert_eq!(idp.alg(), "EdDSA");
        let token = idp.token(&json!({"sub": "alice"}));
        let x = URL_SAFE_NO_PAD
            .decode(idp.jwk()["x"].as_str().unwrap())
            .unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&parts(&token)[2]).unwrap();
        let input = token.rsplit_once('.').unwrap().0;
        assert!(key.verify(input.as_bytes(), &signature).is_ok());
    }

    #[test]
    fn same_seed_same_key_and_bad_seeds_are_errors() {
        assert_eq!(
            Issuer::es256(1, "a").jwk()["x"],
            Issuer::es256(1, "b").jwk()["x"]
        );
        assert_ne!(
            Issuer::es256(1, "a").jwk()["x"],
            Issuer::es256(2, "a").jwk()["x"]
        );
        assert_eq!(
            Issuer::try_es256(0, "k").err(),
            Some(KeyError::Es256Seed(0))
        );
        assert_eq!(
            Issuer::try_es256(255, "k").err(),
            Some(KeyError::Es256Seed(255))
        );
    }

    #[test]
    fn a_jwks_lists_keys_in_order() {
        let (old, new) = (Issuer::es256(7, "k1"), Issuer::eddsa(8, "k2"));
        let set = jwks(&[&old, &new]);
        assert_eq!(set["keys"][0]["kid"], "k1");
        assert_eq!(set["keys"][1]["kid"], "k2");
    }
}
