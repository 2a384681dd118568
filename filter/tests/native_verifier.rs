//! The native-verifier path (Envoy's `verify_signature`): what it is given, and that its "no" is
//! final while its absence falls back to RustCrypto.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;
use filter::http::denial::Denial;
use filter::jose::signature::NativeVerifier;
use filter::validation::validate_with;
use p256::pkcs8::DecodePublicKey;
use serde_json::json;
use signature::Verifier;
use std::cell::Cell;

/// Verifies like BoringSSL would: SPKI DER key, DER ECDSA signature.
struct DerVerifier {
    calls: Cell<u32>,
}

impl NativeVerifier for DerVerifier {
    fn verify(&self, hash: &str, spki: &[u8], message: &[u8], signature: &[u8]) -> Option<bool> {
        self.calls.set(self.calls.get() + 1);
        assert_eq!(hash, "sha256");
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki).unwrap();
        let sig = p256::ecdsa::Signature::from_der(signature).unwrap();
        Some(key.verify(message, &sig).is_ok())
    }
}

struct Fixed(Option<bool>);

impl NativeVerifier for Fixed {
    fn verify(&self, _: &str, _: &[u8], _: &[u8], _: &[u8]) -> Option<bool> {
        self.0
    }
}

#[test]
fn es256_goes_native_with_der_key_and_signature() {
    let idp = Issuer::es256(1, "k1");
    let config = config_with(json!({}));
    let keys = idp.key_set();
    let native = DerVerifier {
        calls: Cell::new(0),
    };
    assert!(validate_with(&config, &[&keys], &idp.token(&claims()), NOW, Some(&native)).is_ok());
    let forged = Issuer::es256(2, "k1").token(&claims());
    assert_eq!(
        validate_with(&config, &[&keys], &forged, NOW, Some(&native)).unwrap_err(),
        Denial::BadSignature
    );
    assert_eq!(native.calls.get(), 2);
}

#[test]
fn a_native_no_is_final_and_absence_falls_back() {
    let idp = Issuer::es256(1, "k1");
    let config = config_with(json!({}));
    let keys = idp.key_set();
    let token = idp.token(&claims());
    assert_eq!(
        validate_with(&config, &[&keys], &token, NOW, Some(&Fixed(Some(false)))).unwrap_err(),
        Denial::BadSignature
    );
    assert!(validate_with(&config, &[&keys], &token, NOW, Some(&Fixed(None))).is_ok());
    // algorithms the native verifier does not cover never reach it
    let ed = Issuer::eddsa(3, "e1");
    let config = config_with(json!({"providers": [{"algorithms": ["EdDSA"]}]}));
    assert!(
        validate_with(
            &config,
            &[&ed.key_set()],
            &ed.token(&claims()),
            NOW,
            Some(&Fixed(Some(false)))
        )
        .is_ok()
    );
}
