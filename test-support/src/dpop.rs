//! DPoP proofs (RFC 9449 §4.2) signed by a test key, thumbprints (RFC 7638) and `ath`.

use crate::issuer::{Issuer, b64};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// `ath`: base64url of the SHA-256 of the access token.
pub fn ath(access_token: &str) -> String {
    b64(&Sha256::digest(access_token.as_bytes()))
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK (EC, RSA or OKP); `None` for another `kty`
/// or a missing member.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut required = BTreeMap::new();
    for m in members {
        required.insert(*m, jwk.get(*m)?.as_str()?);
    }
    let text = serde_json::to_string(&required).ok()?;
    Some(b64(&Sha256::digest(text.as_bytes())))
}

/// The claims of a proof for `htm` `htu` at `iat`, with `jti` and the `ath` of `access_token`.
pub fn proof_claims(htm: &str, htu: &str, iat: u64, jti: &str, access_token: &str) -> Value {
    json!({"htm": htm, "htu": htu, "iat": iat, "jti": jti, "ath": ath(access_token)})
}

impl Issuer {
    /// The public key as a DPoP proof carries it: the key members only (no `kid`, `use`, `alg`).
    pub fn public_jwk(&self) -> Value {
        let mut jwk: Map<String, Value> = match self.jwk() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for m in ["kid", "use", "alg"] {
            jwk.remove(m);
        }
        Value::Object(jwk)
    }

    /// This key's RFC 7638 thumbprint: what a token bound to it carries in `cnf.jkt`.
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.public_jwk()).unwrap_or_default()
    }

    /// The header of a proof by this key: `typ: dpop+jwt`, `alg`, `jwk`.
    pub fn proof_header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.public_jwk()})
    }

    /// A DPoP proof with [`Issuer::proof_header`] and `claims` (see [`proof_claims`]).
    pub fn proof(&self, claims: &Value) -> String {
        self.sign(&self.proof_header(), claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7638_section_3_1_example() {
        // The RSA key of RFC 7638 §3.1 and its thumbprint.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn a_proof_carries_the_public_key_only() {
        let key = Issuer::es256(3, "k");
        let proof = key.proof(&proof_claims("GET", "https://a/b", 1, "j", "t"));
        assert_eq!(proof.split('.').count(), 3);
        let jwk = key.public_jwk();
        assert!(jwk.get("kid").is_none() && jwk.get("d").is_none());
        assert_eq!(key.thumbprint().len(), 43);
    }
}
