//! Signature verification in AWS-LC (`aws-lc-rs`), with every key parsed once — when a JWKS is
//! published — into an `EVP_PKEY` ready to verify, rather than on every call as Envoy's
//! `verify_signature` foreign function does for the Wasm module.
//!
//! Why `aws-lc-rs` rather than `ring`: both are BoringSSL-class, but only `aws-lc-rs` keeps a parsed
//! public key (`ParsedPublicKey`), takes the DER SubjectPublicKeyInfo the core already builds for
//! each key, and is already in this workspace's lock file (one C crypto library, not two).

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, VerificationAlgorithm,
};
use filter::jose::jwk::{KeyMaterial, KeySet};
use filter::jose::signature::NativeVerifier;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

/// Every P-256 and RSA key of a set of JWKS, parsed, by its SubjectPublicKeyInfo.
#[derive(Default)]
pub struct ParsedKeys {
    by_spki: HashMap<Vec<u8>, ParsedPublicKey>,
}

impl ParsedKeys {
    /// Parses the keys AWS-LC can verify with (ES256: P-256; RS256: RSA 2048–8192 bits). A key it
    /// refuses is left to the core's pure-Rust path (which has already accepted it).
    pub fn build(sets: &[KeySet]) -> ParsedKeys {
        let mut by_spki = HashMap::new();
        for key in sets.iter().flat_map(|s| &s.keys) {
            let algorithm: &'static dyn VerificationAlgorithm = match key.material {
                KeyMaterial::P256(_) => &ECDSA_P256_SHA256_ASN1,
                KeyMaterial::Rsa(_) => &RSA_PKCS1_2048_8192_SHA256,
                KeyMaterial::Ed25519(_) => continue,
            };
            let Some(spki) = &key.spki_der else { continue };
            if let Ok(parsed) = ParsedPublicKey::new(algorithm, spki) {
                by_spki.insert(spki.clone(), parsed);
            }
        }
        ParsedKeys { by_spki }
    }

    pub fn len(&self) -> usize {
        self.by_spki.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_spki.is_empty()
    }
}

impl NativeVerifier for ParsedKeys {
    fn verify(
        &self,
        hash: &str,
        spki_der: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        if hash != "sha256" {
            return None;
        }
        if let Some(key) = self.by_spki.get(spki_der) {
            return Some(key.verify_sig(message, signature).is_ok());
        }
        // A key that is not in any JWKS (a DPoP proof's own `jwk`): parsed on this worker's
        // first proof by that key, then kept with the worker's other proof keys.
        PROOF_KEYS.with(|keys| {
            let mut keys = keys.try_borrow_mut().ok()?;
            let key = keys.get_or_parse(spki_der)?;
            Some(key.verify_sig(message, signature).is_ok())
        })
    }
}

/// Proof keys parsed per worker thread, at most [`MAX_PROOF_KEYS`], oldest out first.
#[derive(Default)]
struct ProofKeys {
    by_spki: HashMap<Vec<u8>, ParsedPublicKey>,
    order: VecDeque<Vec<u8>>,
}

/// As many as the core keeps parsed proof headers per worker (`filter::validation::dpop::proof_keys`).
const MAX_PROOF_KEYS: usize = filter::validation::dpop::proof_keys::MAX_ENTRIES;

impl ProofKeys {
    fn get_or_parse(&mut self, spki_der: &[u8]) -> Option<&ParsedPublicKey> {
        if !self.by_spki.contains_key(spki_der) {
            // Only one of the two parses can succeed (the SubjectPublicKeyInfo names its type).
            let algorithms: [&'static dyn VerificationAlgorithm; 2] =
                [&ECDSA_P256_SHA256_ASN1, &RSA_PKCS1_2048_8192_SHA256];
            let parsed = algorithms
                .into_iter()
                .find_map(|alg| ParsedPublicKey::new(alg, spki_der).ok())?;
            while self.by_spki.len() >= MAX_PROOF_KEYS {
                let oldest = self.order.pop_front()?;
                self.by_spki.remove(&oldest);
            }
            self.by_spki.insert(spki_der.to_vec(), parsed);
            self.order.push_back(spki_der.to_vec());
        }
        self.by_spki.get(spki_der)
    }
}

thread_local! {
    static PROOF_KEYS: RefCell<ProofKeys> = RefCell::new(ProofKeys::default());
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    };
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use filter::jose::algorithm::Algorithm;
    use filter::jose::signature::verify_jwk;

    /// A fresh P-256 key: its JWKS (kid "k1") and the key pair (JWS signatures).
    pub fn p256_jwks() -> (String, EcdsaKeyPair) {
        let (jwks, pair, _) = p256_jwks_pkcs8();
        (jwks, pair)
    }

    fn p256_jwks_pkcs8() -> (String, EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pkcs8 = pkcs8.as_ref().to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]});
        (jwks.to_string(), pair, pkcs8)
    }

    #[test]
    fn a_p256_key_is_parsed_once_and_verifies_der_signatures() {
        let (jwks, _, pkcs8) = p256_jwks_pkcs8();
        let set = KeySet::parse(jwks.as_bytes()).unwrap().set;
        let parsed = ParsedKeys::build(std::slice::from_ref(&set));
        assert_eq!(parsed.len(), 1);
        let spki = set.keys[0].spki_der.clone().unwrap();
        // A DER signature by the same key, made with AWS-LC's ASN.1 signer.
        let rng = SystemRandom::new();
        let der_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).unwrap();
        let sig = der_pair.sign(&rng, b"message").unwrap();
        assert_eq!(
            parsed.verify("sha256", &spki, b"message", sig.as_ref()),
            Some(true)
        );
        assert_eq!(
            parsed.verify("sha256", &spki, b"messagE", sig.as_ref()),
            Some(false)
        );
        // Unknown hash, or a key AWS-LC cannot parse: no answer, the core falls back to its own
        // path.
        assert_eq!(parsed.verify("sha256", b"other", b"m", sig.as_ref()), None);
        assert_eq!(parsed.verify("sha384", &spki, b"m", sig.as_ref()), None);
    }

    #[test]
    fn a_key_from_no_jwks_is_parsed_on_first_use_and_kept_per_thread() {
        let kept = || PROOF_KEYS.with(|k| k.borrow().by_spki.len());
        assert_eq!(kept(), 0);
        let (jwks, _, pkcs8) = p256_jwks_pkcs8();
        let set = KeySet::parse(jwks.as_bytes()).unwrap().set;
        let spki = set.keys[0].spki_der.clone().unwrap();
        let empty = ParsedKeys::default();
        let rng = SystemRandom::new();
        let der_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).unwrap();
        let sig = der_pair.sign(&rng, b"proof").unwrap();
        assert_eq!(
            empty.verify("sha256", &spki, b"proof", sig.as_ref()),
            Some(true)
        );
        assert_eq!(
            empty.verify("sha256", &spki, b"proos", sig.as_ref()),
            Some(false)
        );
        assert_eq!(kept(), 1);
        // Not a key AWS-LC can parse: nothing kept, no answer (the core's own path decides).
        assert_eq!(
            empty.verify("sha256", b"junk", b"proof", sig.as_ref()),
            None
        );
        assert_eq!(kept(), 1);
        for i in 0..MAX_PROOF_KEYS + 3 {
            let (jwks, _) = p256_jwks();
            let set = KeySet::parse(jwks.as_bytes()).unwrap().set;
            let spki = set.keys[0].spki_der.clone().unwrap();
            assert_eq!(
                empty.verify("sha256", &spki, b"x", b"bad"),
                Some(false),
                "{i}"
            );
        }
        assert_eq!(kept(), MAX_PROOF_KEYS);
    }

    #[test]
    fn the_core_uses_it_for_raw_jws_signatures() {
        let (jwks, pair) = p256_jwks();
        let set = KeySet::parse(jwks.as_bytes()).unwrap().set;
        let parsed = ParsedKeys::build(std::slice::from_ref(&set));
        let rng = SystemRandom::new();
        // JWS carries raw r||s; the core converts it to DER for the native verifier.
        let sig = pair.sign(&rng, b"header.payload").unwrap();
        let native: &dyn NativeVerifier = &parsed;
        let key = &set.keys[0];
        assert!(verify_jwk(
            Some(native),
            Algorithm::Es256,
            key,
            b"header.payload",
            sig.as_ref()
        ));
        assert!(!verify_jwk(
            Some(native),
            Algorithm::Es256,
            key,
            b"header.payloaD",
            sig.as_ref()
        ));
    }
}
