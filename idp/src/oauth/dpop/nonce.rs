//! Server nonces (RFC 9449 §8) that any replica can check without shared state: the nonce of a
//! time slot is `base64url(HMAC-SHA256(key, slot))`, slot = `now / lifetime`. The key is derived
//! from the key-encryption key (every replica must hold the same one to read the signing keys),
//! so replicas agree on it without any more configuration. A nonce is handed out during its
//! slot and accepted during that slot and the next (one to two lifetimes), so replicas' clocks
//! must agree within a lifetime — they must already agree on token expiry.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The HKDF purpose the nonce key is derived for (see `Kek::derive_hmac_key`).
pub const NONCE_KEY_PURPOSE: &str = "dpop-nonce v1";

pub struct NonceKey {
    key: hmac::Key,
    lifetime_seconds: i64,
}

impl NonceKey {
    pub fn new(key: hmac::Key, lifetime_seconds: u64) -> NonceKey {
        NonceKey {
            key,
            lifetime_seconds: i64::try_from(lifetime_seconds).unwrap_or(300).max(1),
        }
    }

    fn slot(&self, now: i64) -> i64 {
        now.div_euclid(self.lifetime_seconds)
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: i64) -> String {
        let tag = hmac::sign(&self.key, &self.slot(now).to_be_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Whether `nonce` was handed out in this slot or the previous one (compared in constant
    /// time).
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let slot = self.slot(now);
        [slot, slot - 1]
            .iter()
            .any(|s| hmac::verify(&self.key, &s.to_be_bytes(), &tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> NonceKey {
        NonceKey::new(hmac::Key::new(hmac::HMAC_SHA256, &[byte; 32]), 60)
    }

    #[test]
    fn a_nonce_lives_one_to_two_lifetimes_and_only_under_its_key() {
        let k = key(1);
        let n = k.current(120);
        assert!(k.accepts(&n, 120) && k.accepts(&n, 179) && k.accepts(&n, 239));
        assert!(!k.accepts(&n, 240), "two slots later");
        assert!(!k.accepts(&n, 119), "from the future");
        assert!(!key(2).accepts(&n, 120), "another key");
        assert!(!k.accepts("not base64!", 120));
        assert_eq!(k.current(179), n);
        assert_ne!(k.current(180), n);
    }
}
