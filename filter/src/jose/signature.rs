//! Signature verification with RustCrypto (the pure-Rust path). The key type was already matched
//! to the algorithm by the key set; a mismatch here is still refused.

use crate::jose::algorithm::Algorithm;
use crate::jose::der;
use crate::jose::jwk::{Jwk, KeyMaterial};
use signature::Verifier;

/// Verifies `signature` over `message` with `key` for `alg`. `false` for any mismatch or error.
pub fn verify(alg: Algorithm, key: &KeyMaterial, message: &[u8], signature: &[u8]) -> bool {
    match (alg, key) {
        (Algorithm::Es256, KeyMaterial::P256(vk)) => p256::ecdsa::Signature::from_slice(signature)
            .is_ok_and(|sig| vk.verify(message, &sig).is_ok()),
        (Algorithm::Rs256, KeyMaterial::Rsa(pk)) => rsa::pkcs1v15::Signature::try_from(signature)
            .is_ok_and(|sig| pk.pkcs1v15.verify(message, &sig).is_ok()),
        (Algorithm::Ps256, KeyMaterial::Rsa(pk)) => rsa::pss::Signature::try_from(signature)
            .is_ok_and(|sig| pk.pss.verify(message, &sig).is_ok()),
        (Algorithm::EdDsa, KeyMaterial::Ed25519(vk)) => {
            <[u8; 64]>::try_from(signature).is_ok_and(|bytes| {
                vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
                    .is_ok()
            })
        }
        _ => false,
    }
}

/// A verifier outside the module (Envoy's `verify_signature` foreign function, BoringSSL).
/// `None`: it cannot answer (absent, or refuses the arguments) — the pure-Rust path is used.
/// `Some(false)` is final: an invalid signature is never retried elsewhere.
pub trait NativeVerifier {
    /// `hash`: "sha256"; `spki_der`: the public key; `signature`: DER for ECDSA, raw for RSA.
    fn verify(&self, hash: &str, spki_der: &[u8], message: &[u8], signature: &[u8])
    -> Option<bool>;
}

/// Verifies with the native verifier where it covers the algorithm (ES256, RS256), else (or when
/// it cannot answer) with RustCrypto.
pub fn verify_jwk(
    native: Option<&dyn NativeVerifier>,
    alg: Algorithm,
    key: &Jwk,
    message: &[u8],
    signature: &[u8],
) -> bool {
    if let (Some(native), Some(spki)) = (native, key.spki_der.as_deref()) {
        let answer = match (alg, &key.material) {
            // BoringSSL refuses r or s outside [1, n-1] itself.
            (Algorithm::Es256, KeyMaterial::P256(_)) => der::ecdsa_signature(signature, 32)
                .and_then(|sig| native.verify("sha256", spki, message, &sig)),
            (Algorithm::Rs256, KeyMaterial::Rsa(_)) => {
                native.verify("sha256", spki, message, signature)
            }
            _ => None,
        };
        if let Some(valid) = answer {
            return valid;
        }
    }
    verify(alg, &key.material, message, signature)
}
