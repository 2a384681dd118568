//! Signature verification with RustCrypto (the pure-Rust path). The key type was already matched
//! to the algorithm by the key set; a mismatch here is still refused.

use crate::algorithm::Algorithm;
use crate::jwk::KeyMaterial;
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
