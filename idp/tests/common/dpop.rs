//! A DPoP client for the tests: keys (aws-lc-rs), proofs signed by hand so that every header
//! and claim can be made wrong on purpose, and thumbprints computed independently of the IDP's
//! code (RFC 7638 §3.1, the members written out).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const TOKEN_URL: &str = "http://127.0.0.1:9000/oauth2/token";
pub const USERINFO_URL: &str = "http://127.0.0.1:9000/oauth2/userinfo";

pub enum DpopKey {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    /// RSA-2048, signing RS256 or (`pss`) PS256.
    Rsa {
        key: aws_lc_rs::rsa::KeyPair,
        pss: bool,
    },
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    b64(&bytes)
}

impl DpopKey {
    pub fn es256() -> DpopKey {
        DpopKey::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    pub fn ed25519() -> DpopKey {
        DpopKey::Ed25519(Ed25519KeyPair::generate().unwrap())
    }

    pub fn rsa(pss: bool) -> DpopKey {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        DpopKey::Rsa { key, pss }
    }

    pub fn alg(&self) -> &'static str {
        match self {
            DpopKey::Es256(_) => "ES256",
            DpopKey::Ed25519(_) => "EdDSA",
            DpopKey::Rsa { pss: false, .. } => "RS256",
            DpopKey::Rsa { pss: true, .. } => "PS256",
        }
    }

    fn rsa_components(key: &aws_lc_rs::rsa::KeyPair) -> (String, String) {
        let c = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public_key());
        (b64(&c.n), b64(&c.e))
    }

    pub fn jwk(&self) -> Value {
        match self {
            DpopKey::Es256(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            DpopKey::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
            DpopKey::Rsa { key, .. } => {
                let (n, e) = Self::rsa_components(key);
                json!({"kty": "RSA", "n": n, "e": e})
            }
        }
    }

    /// RFC 7638 thumbprint, members in lexicographic order written out by hand.
    pub fn jkt(&self) -> String {
        let j = self.jwk();
        let s = |m: &str| j[m].as_str().unwrap().to_owned();
        let canonical = match self {
            DpopKey::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                s("x"),
                s("y")
            ),
            DpopKey::Ed25519(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, s("x")),
            DpopKey::Rsa { .. } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n")),
        };
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            DpopKey::Es256(k) => k
                .sign(&SystemRandom::new(), input)
                .unwrap()
                .as_ref()
                .to_vec(),
            DpopKey::Ed25519(k) => k.sign(input).as_ref().to_vec(),
            DpopKey::Rsa { key, pss } => {
                use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256};
                let padding = if *pss {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                let mut sig = vec![0u8; key.public_modulus_len()];
                key.sign(padding, &SystemRandom::new(), input, &mut sig)
                    .unwrap();
                sig
            }
        }
    }

    /// The normal header: `typ: dpop+jwt`, this key's `alg` and public `jwk`.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    /// A JWS of `header` and `claims` signed by this key.
    pub fn sign_jws(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// A valid proof for `htm` `htu` now.
    pub fn proof(&self, htm: &str, htu: &str) -> String {
        self.sign_jws(&self.header(), &claims(htm, htu))
    }

    /// A valid token-endpoint proof, with a nonce.
    pub fn proof_with_nonce(&self, nonce: &str) -> String {
        let mut c = claims("POST", TOKEN_URL);
        c["nonce"] = nonce.into();
        self.sign_jws(&self.header(), &c)
    }

    /// A proof for a resource request with the access token's hash (`ath`).
    pub fn resource_proof(&self, htm: &str, htu: &str, access_token: &str) -> String {
        let mut c = claims(htm, htu);
        c["ath"] = b64(&Sha256::digest(access_token.as_bytes())).into();
        self.sign_jws(&self.header(), &c)
    }
}

/// Claims of a fresh proof.
pub fn claims(htm: &str, htu: &str) -> Value {
    json!({"jti": random_jti(), "htm": htm, "htu": htu, "iat": now()})
}
