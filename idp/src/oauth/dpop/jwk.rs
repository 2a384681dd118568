//! The public key in a DPoP proof's header (RFC 9449 §4.2): it must be a public key of the
//! proof's algorithm, and it is named by its RFC 7638 thumbprint (`jkt`).

use super::ProofAlg;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037
/// §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3 requires 2048).
const MIN_RSA_BITS: usize = 2048;

fn text<'a>(jwk: &'a Map<String, Value>, member: &str) -> Result<&'a str, String> {
    jwk.get(member)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("the jwk has no {member:?} member"))
}

/// Checks that `jwk` is a public key usable with `alg` and returns its RFC 7638 thumbprint
/// (SHA-256, base64url): the hash of its required members only, in lexicographic order, with
/// no whitespace.
pub fn public_key_thumbprint(jwk: &Map<String, Value>, alg: ProofAlg) -> Result<String, String> {
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(format!(
            "the jwk must be a public key, but it has the private member {member:?}"
        ));
    }
    let kty = text(jwk, "kty")?;
    let mut required: BTreeMap<&str, &str> = BTreeMap::new();
    required.insert("kty", kty);
    match (alg, kty) {
        (ProofAlg::Es256, "EC") => {
            let crv = text(jwk, "crv")?;
            if crv != "P-256" {
                return Err(format!("ES256 needs a P-256 key, not {crv:?}"));
            }
            required.insert("crv", crv);
            required.insert("x", text(jwk, "x")?);
            required.insert("y", text(jwk, "y")?);
        }
        (ProofAlg::Rs256 | ProofAlg::Ps256, "RSA") => {
            let n = text(jwk, "n")?;
            let bits = URL_SAFE_NO_PAD
                .decode(n)
                .map_err(|_| "the jwk's \"n\" is not base64url".to_owned())?
                .iter()
                .skip_while(|b| **b == 0)
                .count()
                * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!("RSA keys must have at least {MIN_RSA_BITS} bits"));
            }
            required.insert("n", n);
            required.insert("e", text(jwk, "e")?);
        }
        (ProofAlg::EdDsa | ProofAlg::Ed25519, "OKP") => {
            let crv = text(jwk, "crv")?;
            if crv != "Ed25519" {
                return Err(format!("EdDSA proofs need an Ed25519 key, not {crv:?}"));
            }
            required.insert("crv", crv);
            required.insert("x", text(jwk, "x")?);
        }
        (alg, kty) => {
            return Err(format!("a {kty:?} key cannot sign {} proofs", alg.as_str()));
        }
    }
    // serde_json writes a BTreeMap's keys in order and adds no whitespace (RFC 7638 §3.3).
    let canonical = serde_json::to_string(&required).map_err(|e| e.to_string())?;
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

fn bytes(jwk: &Map<String, Value>, member: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text(jwk, member)?)
        .map_err(|_| format!("the jwk's {member:?} is not base64url"))
}

/// Verifies the JWS signature `signature` of `message` (the signing input) by `jwk` with `alg`
/// (aws-lc-rs). `jwk` has passed [`public_key_thumbprint`] for `alg`, so its type fits.
pub fn verify_signature(
    jwk: &Map<String, Value>,
    alg: ProofAlg,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let verified = match alg {
        ProofAlg::Es256 => {
            let (x, y) = (bytes(jwk, "x")?, bytes(jwk, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("the jwk is not a P-256 point".into());
            }
            let point = [&[0x04][..], &x, &y].concat();
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(message, signature)
        }
        ProofAlg::Rs256 | ProofAlg::Ps256 => {
            let key = RsaPublicKeyComponents {
                n: bytes(jwk, "n")?,
                e: bytes(jwk, "e")?,
            };
            let params = if alg == ProofAlg::Rs256 {
                &RSA_PKCS1_2048_8192_SHA256
            } else {
                &RSA_PSS_2048_8192_SHA256
            };
            key.verify(params, message, signature)
        }
        ProofAlg::EdDsa | ProofAlg::Ed25519 => {
            UnparsedPublicKey::new(&ED25519, bytes(jwk, "x")?).verify(message, signature)
        }
    };
    verified.map_err(|_| "the proof's signature does not verify with its jwk".to_owned())
}

/// Whether `jkt` looks like a SHA-256 thumbprint in base64url (43 characters).
pub fn is_thumbprint(jkt: &str) -> bool {
    jkt.len() == 43
        && jkt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let t = public_key_thumbprint(jwk.as_object().unwrap(), ProofAlg::Rs256).unwrap();
        assert_eq!(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert!(is_thumbprint(&t));
    }

    #[test]
    fn private_members_and_wrong_key_types_are_refused() {
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"});
        let e = public_key_thumbprint(ec.as_object().unwrap(), ProofAlg::Es256).unwrap_err();
        assert!(e.contains("private member \"d\""), "{e}");
        let okp = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"});
        assert!(public_key_thumbprint(okp.as_object().unwrap(), ProofAlg::Es256).is_err());
        let p384 = serde_json::json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"});
        assert!(public_key_thumbprint(p384.as_object().unwrap(), ProofAlg::Es256).is_err());
        let small = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        assert!(public_key_thumbprint(small.as_object().unwrap(), ProofAlg::Rs256).is_err());
    }
}
