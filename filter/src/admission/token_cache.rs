//! The verified-token cache: a token seen before is not verified again. Keyed by a keyed 128-bit
//! digest of the token (SipHash-2-4-128 under a random secret key drawn per cache, i.e. per VM; the
//! token itself is never stored), bounded in size, entries die at the token's expiry (rechecked on
//! every hit, with the provider's leeway) and the whole cache is dropped when the keys change.
//! Revocation is checked on every hit by the caller, against the denylist.
//!
//! Why not SHA-256: it was half of the filter's work on a cache hit (≈ 35 k of 67 k Wasm
//! instructions for a 350-byte token). SipHash is a PRF: without the secret key nobody can
//! compute a digest, let alone a token colliding with a cached one, and 128 bits leave blind
//! guessing at 2⁻¹²⁸ per try — the same protection a truncated SHA-256 would give, ~20× cheaper.

use crate::validation::dpop::proof_keys::ProofKeyCache;
use crate::validation::verified_token::VerifiedToken;
use siphasher::sip128::{Hasher128, SipHasher24};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::rc::Rc;

/// A token's digest under the cache's secret key.
pub type Key = u128;

/// The digests are already uniformly distributed (a PRF's output): the map uses their low bits as
/// they are instead of hashing them again.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used (the key type); fold anything else in, never panic.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// The secret SipHash key, drawn from the OS's randomness (through std's `RandomState`, whose
/// own keys come from `random_get` on WASI). Not printed by `Debug`.
#[derive(Clone, Copy, Default)]
struct Secret(u64, u64);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    fn random() -> Self {
        let state = RandomState::new();
        Secret(state.hash_one(0x5EC_u64), state.hash_one(0x7E7_u64))
    }
}

#[derive(Debug, Default)]
pub struct TokenCache {
    max_entries: usize,
    secret: Secret,
    entries: HashMap<Key, Rc<VerifiedToken>, BuildHasherDefault<PassThrough>>,
    /// Insertion order, for eviction when full.
    order: VecDeque<Key>,
    hits: u64,
    misses: u64,
    /// The worker's parsed DPoP proof headers, beside its verified tokens (kept when the keys
    /// change: a proof's key comes from the proof, not from a JWKS).
    pub proof_keys: ProofKeyCache,
}

impl TokenCache {
    pub fn new(max_entries: usize) -> Self {
        TokenCache {
            max_entries,
            secret: Secret::random(),
            ..Default::default()
        }
    }

    /// The digest `token` is cached under.
    pub fn key_of(&self, token: &str) -> Key {
        let mut h = SipHasher24::new_with_keys(self.secret.0, self.secret.1);
        h.write(token.as_bytes());
        h.finish128().as_u128()
    }

    /// The cached verification of `token`, if still within its lifetime at `now`.
    pub fn get(
        &mut self,
        key: &Key,
        now: u64,
        leeway: impl Fn(usize) -> u64,
    ) -> Option<Rc<VerifiedToken>> {
        let fresh = match self.entries.get(key) {
            Some(v) => {
                v.lifetime.check(now, leeway(v.provider)).is_ok()
                    && v.recheck_after.is_none_or(|at| now < at)
            }
            None => {
                self.misses += 1;
                return None;
            }
        };
        if !fresh {
            // Expired: forget it and verify again (which will refuse it with the right reason).
            self.entries.remove(key);
            self.misses += 1;
            return None;
        }
        self.hits += 1;
        self.entries.get(key).cloned()
    }

    pub fn insert(&mut self, key: Key, token: Rc<VerifiedToken>) {
        if self.max_entries == 0 {
            return;
        }
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(&key) {
            // Drop the oldest entries (some may already be gone).
            while self.entries.len() >= self.max_entries {
                match self.order.pop_front() {
                    Some(old) => {
                        self.entries.remove(&old);
                    }
                    None => break,
                }
            }
        }
        if self.entries.insert(key, token).is_none() {
            self.order.push_back(key);
        }
        // Keep the order queue from growing past the entries it tracks.
        if self.order.len() > self.max_entries.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
    }

    /// Forgets everything (the keys changed).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Hits and misses since the last call.
    pub fn take_stats(&mut self) -> (u64, u64) {
        let s = (self.hits, self.misses);
        self.hits = 0;
        self.misses = 0;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::claims::Lifetime;

    fn token(exp: u64) -> VerifiedToken {
        VerifiedToken {
            ids: Default::default(),
            recheck_after: None,
            claim_headers: Vec::new(),
            provider: 0,
            lifetime: Lifetime {
                exp,
                nbf: None,
                iat: None,
            },
            jti: None,
            sid: None,
            sub: Some("s".into()),
            scopes: vec![],
            jkt: None,
            ath: None,
            claims: Default::default(),
        }
    }

    #[test]
    fn hits_until_expiry_plus_leeway() {
        let mut c = TokenCache::new(10);
        let k = c.key_of("a.b.c");
        assert!(c.get(&k, 0, |_| 0).is_none());
        c.insert(k, Rc::new(token(100)));
        assert!(c.get(&k, 99, |_| 0).is_some());
        assert!(c.get(&k, 105, |_| 10).is_some());
        assert!(
            c.get(&k, 100, |_| 0).is_none(),
            "expired entries are not served"
        );
        assert!(c.is_empty(), "and are forgotten");
        assert_eq!(c.take_stats(), (2, 2));
        assert_eq!(c.take_stats(), (0, 0));
    }

    #[test]
    fn bounded_oldest_first_and_cleared() {
        let mut c = TokenCache::new(3);
        for i in 0..5 {
            c.insert(c.key_of(&i.to_string()), Rc::new(token(1_000)));
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&c.key_of("0"), 0, |_| 0).is_none());
        assert!(c.get(&c.key_of("1"), 0, |_| 0).is_none());
        assert!(c.get(&c.key_of("4"), 0, |_| 0).is_some());
        c.clear();
        assert!(c.is_empty());
        let mut off = TokenCache::new(0);
        off.insert(off.key_of("x"), Rc::new(token(1_000)));
        assert!(off.is_empty());
    }

    #[test]
    fn keys_are_secret_per_cache_and_distinguish_tokens() {
        let a = TokenCache::new(1);
        let b = TokenCache::new(1);
        assert_eq!(a.key_of("x.y.z"), a.key_of("x.y.z"));
        assert_ne!(a.key_of("x.y.z"), a.key_of("x.y.Z"));
        assert_ne!(
            a.key_of("x.y.z"),
            b.key_of("x.y.z"),
            "each cache draws its own key"
        );
        assert_eq!(format!("{:?}", a.secret), "Secret(..)");
    }
}
