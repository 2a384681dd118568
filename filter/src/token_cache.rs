//! The verified-token cache: a token seen before is not verified again. Keyed by the SHA-256 of
//! the token (the token itself is never stored), bounded in size, entries die at the token's
//! expiry (rechecked on every hit, with the provider's leeway) and the whole cache is dropped when
//! the keys change. Revocation is checked on every hit by the caller, against the denylist.

use crate::verified::VerifiedToken;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

pub const DEFAULT_MAX_ENTRIES: usize = 4_096;

type Key = [u8; 32];

#[derive(Debug, Default)]
pub struct TokenCache {
    max_entries: usize,
    entries: HashMap<Key, Rc<VerifiedToken>>,
    /// Insertion order, for eviction when full.
    order: VecDeque<Key>,
    hits: u64,
    misses: u64,
}

pub fn key_of(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    pub fn new(max_entries: usize) -> Self {
        TokenCache {
            max_entries,
            ..Default::default()
        }
    }

    /// The cached verification of `token`, if still within its lifetime at `now`.
    pub fn get(
        &mut self,
        key: &Key,
        now: u64,
        leeway: impl Fn(usize) -> u64,
    ) -> Option<Rc<VerifiedToken>> {
        let fresh = match self.entries.get(key) {
            Some(v) => v.lifetime.check(now, leeway(v.provider)).is_ok(),
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
    use crate::claims::Lifetime;

    fn token(exp: u64) -> VerifiedToken {
        VerifiedToken {
            provider: 0,
            lifetime: Lifetime { exp, nbf: None },
            jti: None,
            sid: None,
            sub: Some("s".into()),
            scopes: vec![],
            claims: Default::default(),
        }
    }

    #[test]
    fn hits_until_expiry_plus_leeway() {
        let mut c = TokenCache::new(10);
        let k = key_of("a.b.c");
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
            c.insert(key_of(&i.to_string()), Rc::new(token(1_000)));
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&key_of("0"), 0, |_| 0).is_none());
        assert!(c.get(&key_of("1"), 0, |_| 0).is_none());
        assert!(c.get(&key_of("4"), 0, |_| 0).is_some());
        c.clear();
        assert!(c.is_empty());
        let mut off = TokenCache::new(0);
        off.insert(key_of("x"), Rc::new(token(1_000)));
        assert!(off.is_empty());
    }
}
