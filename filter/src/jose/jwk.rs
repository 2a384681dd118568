//! JSON Web Key Sets (RFC 7517): parsed once when fetched into verifying keys. Keys the gateway
//! cannot use (other key types, encryption keys, weak RSA moduli, private members) are skipped with
//! a reason, so one odd key in an IDP's JWKS does not take down the others.

use crate::jose::algorithm::Algorithm;
use crate::jose::der;
use crate::jose::jws::decode_segment;
use rsa::BoxedUint;
use serde_json::{Map, Value};

/// The smallest RSA modulus accepted (bits).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted (bits): bounds the verification cost an IDP can impose.
pub const MAX_RSA_BITS: usize = 8192;
/// A bound on keys kept from one JWKS.
pub const MAX_KEYS: usize = 64;

#[derive(Debug, Clone)]
pub enum KeyMaterial {
    P256(p256::ecdsa::VerifyingKey),
    Rsa(Box<RsaKey>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl KeyMaterial {
    pub fn supports(&self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (KeyMaterial::P256(_), Algorithm::Es256)
                | (KeyMaterial::Rsa(_), Algorithm::Rs256 | Algorithm::Ps256)
                | (KeyMaterial::Ed25519(_), Algorithm::EdDsa)
        )
    }
}

/// An RSA public key with its verifiers built once (PKCS#1 v1.5 for RS256, PSS for PS256).
#[derive(Debug, Clone)]
pub struct RsaKey {
    pub pkcs1v15: rsa::pkcs1v15::VerifyingKey<sha2::Sha256>,
    pub pss: rsa::pss::VerifyingKey<sha2::Sha256>,
}

#[derive(Debug, Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The JWK's own `alg`, when it names one: the key is then usable for that algorithm only.
    pub alg: Option<Algorithm>,
    pub material: KeyMaterial,
    /// The key as DER SubjectPublicKeyInfo (P-256 and RSA), for a native verifier.
    pub spki_der: Option<Vec<u8>>,
}

impl Jwk {
    pub fn usable_for(&self, alg: Algorithm) -> bool {
        self.material.supports(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
}

/// The outcome of parsing a JWKS document: usable keys plus why others were skipped.
#[derive(Debug, Default)]
pub struct ParsedKeySet {
    pub set: KeySet,
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS is not a JSON object with a \"keys\" array")]
    NotAKeySet,
    #[error("JWKS has no usable signing key ({0})")]
    NoUsableKey(String),
}

impl KeySet {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Candidate keys for a token: by `kid` when the token names one, else every key usable for
    /// the algorithm.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys
            .iter()
            .filter(move |k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .filter(move |k| k.usable_for(alg))
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    pub fn parse(bytes: &[u8]) -> Result<ParsedKeySet, JwksError> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|_| JwksError::NotAKeySet)?;
        let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
            return Err(JwksError::NotAKeySet);
        };
        let mut parsed = ParsedKeySet::default();
        for (i, key) in keys.iter().enumerate() {
            if parsed.set.keys.len() >= MAX_KEYS {
                parsed
                    .skipped
                    .push(format!("keys after the first {MAX_KEYS} ignored"));
                break;
            }
            match key.as_object().ok_or("not an object").and_then(parse_jwk) {
                Ok(jwk) => parsed.set.keys.push(jwk),
                Err(why) => parsed.skipped.push(format!("key {i}: {why}")),
            }
        }
        if parsed.set.keys.is_empty() {
            return Err(JwksError::NoUsableKey(parsed.skipped.join("; ")));
        }
        Ok(parsed)
    }
}

fn member<'a>(key: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, &'static str> {
    match key.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err("a member has the wrong type"),
    }
}

fn required_bytes(key: &Map<String, Value>, name: &str) -> Result<Vec<u8>, &'static str> {
    let s = member(key, name)?.ok_or("a required member is missing")?;
    decode_segment(s).map_err(|_| "a member is not canonical base64url")
}

/// DER SubjectPublicKeyInfo (RFC 5280) of an uncompressed P-256 point (RFC 5480): the fixed
/// prefix for id-ecPublicKey / prime256v1 and a 66-byte BIT STRING, then the point. Written here
/// rather than through the crates' `pkcs8` encoders, which pull a DER library into the module.
fn p256_spki(sec1: &[u8]) -> Vec<u8> {
    const PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let mut out = Vec::with_capacity(PREFIX.len() + sec1.len());
    out.extend_from_slice(&PREFIX);
    out.extend_from_slice(sec1);
    out
}

/// DER SubjectPublicKeyInfo of an RSA key (RFC 8017 A.1.1 inside RFC 5280 §4.1):
/// `SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { SEQUENCE { n, e } } }`.
fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let key = der::element(der::SEQUENCE, &[der::uint(n), der::uint(e)].concat());
    let bits = der::element(der::BIT_STRING, &[&[0u8][..], &key].concat());
    der::element(der::SEQUENCE, &[&ALGORITHM[..], &bits].concat())
}

/// One JWK (RFC 7517) to a verifying key: public keys only (a private or symmetric member is an
/// error), of a type and size the gateway verifies.
pub fn parse_jwk(key: &Map<String, Value>) -> Result<Jwk, &'static str> {
    if member(key, "use")?.is_some_and(|u| u != "sig") {
        return Err("not a signature key (use != sig)");
    }
    if let Some(Value::Array(ops)) = key.get("key_ops")
        && !ops.iter().any(|o| o == "verify")
    {
        return Err("key_ops does not include verify");
    }
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| key.contains_key(*m))
    {
        return Err("contains private or symmetric key material");
    }
    let alg = match member(key, "alg")? {
        None => None,
        Some(a) => Some(a.parse::<Algorithm>().map_err(|_| "unsupported alg")?),
    };
    let mut spki_der = None;
    let material = match member(key, "kty")? {
        Some("EC") => {
            if member(key, "crv")? != Some("P-256") {
                return Err("unsupported EC curve");
            }
            let (x, y) = (required_bytes(key, "x")?, required_bytes(key, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes");
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .map_err(|_| "P-256 point is not on the curve")?;
            spki_der = Some(p256_spki(&sec1));
            KeyMaterial::P256(vk)
        }
        Some("RSA") => {
            let (n, e) = (required_bytes(key, "n")?, required_bytes(key, "e")?);
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            let bits = n.len() * 8;
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err("RSA modulus size outside 2048..=8192 bits");
            }
            if e.is_empty() || e.len() > 4 {
                return Err("RSA exponent out of range");
            }
            let pk = rsa::PublicKey::new(
                BoxedUint::from_be_slice_vartime(n),
                BoxedUint::from_be_slice_vartime(e),
            )
            .map_err(|_| "invalid RSA public key")?;
            spki_der = Some(rsa_spki(n, e));
            KeyMaterial::Rsa(Box::new(RsaKey {
                pkcs1v15: rsa::pkcs1v15::VerifyingKey::new(pk.clone()),
                pss: rsa::pss::VerifyingKey::new(pk),
            }))
        }
        Some("OKP") => {
            if member(key, "crv")? != Some("Ed25519") {
                return Err("unsupported OKP curve");
            }
            let x: [u8; 32] = required_bytes(key, "x")?
                .try_into()
                .map_err(|_| "Ed25519 key must be 32 bytes")?;
            let vk =
                ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| "invalid Ed25519 point")?;
            KeyMaterial::Ed25519(vk)
        }
        Some(_) => return Err("unsupported kty"),
        None => return Err("missing kty"),
    };
    let jwk = Jwk {
        kid: member(key, "kid")?.map(str::to_owned),
        alg,
        material,
        spki_der,
    };
    if let Some(a) = jwk.alg
        && !jwk.material.supports(a)
    {
        return Err("alg does not match the key type");
    }
    Ok(jwk)
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

#[cfg(test)]
mod spki_tests {
    use super::*;

    #[test]
    fn hand_written_spki_matches_the_crates_encoders() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let vk = *sk.verifying_key();
        let point = vk.to_sec1_point(false);
        let theirs = p256::pkcs8::EncodePublicKey::to_public_key_der(&vk).unwrap();
        assert_eq!(p256_spki(point.as_bytes()), theirs.as_bytes());

        // Moduli with and without the top bit set (a leading 0x00 in the INTEGER), and a
        // multi-byte exponent.
        for (first, e) in [(0xC3u8, &[1u8, 0, 1][..]), (0x5A, &[3][..])] {
            for bytes in [256usize, 512] {
                let mut n = vec![0xA5; bytes];
                n[0] = first;
                n[bytes - 1] |= 1;
                let pk = rsa::PublicKey::new(
                    BoxedUint::from_be_slice_vartime(&n),
                    BoxedUint::from_be_slice_vartime(e),
                )
                .unwrap();
                let theirs = rsa::pkcs8::EncodePublicKey::to_public_key_der(&pk).unwrap();
                assert_eq!(
                    rsa_spki(&n, e),
                    theirs.as_bytes(),
                    "{bytes} bytes, {first:#x}"
                );
            }
        }
    }
}
