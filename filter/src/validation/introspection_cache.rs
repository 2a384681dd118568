//! Introspection answers, once per Envoy: every worker reads and writes the same cache (the host's
//! shared data), so one answer serves every worker until it dies. Keyed by a hash of the token —
//! the token itself never goes into shared memory.
//!
//! Spread over [`SHARDS`] shared entries written with compare-and-set. A shard is a list of
//! `[u64 hash][u32 dies_at][u8 active][u16 length][claims JSON]` entries; expired entries are
//! dropped on every write, and a full shard drops the entry that dies first. An answer is kept
//! until the token's `exp` or the provider's `cache_seconds`, whichever comes first (an
//! "inactive" answer for `negative_cache_seconds`), so a token revoked at the provider is refused
//! within that time; a stale positive answer is never used.

use crate::shared_state::{CAS_ATTEMPTS, SetError, SharedData};
use sha2::{Digest, Sha256};

pub const SHARD_BITS: u32 = 8;
pub const SHARDS: usize = 1 << SHARD_BITS;
/// The largest claims document kept; an answer with more is refused (503), never used uncached.
pub const MAX_CLAIMS_BYTES: usize = 16 * 1024;
const HEADER_BYTES: usize = 8 + 4 + 1 + 2;

/// What the cache holds for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// Active, with the answer's claims (JSON).
    Active {
        claims: Vec<u8>,
        dies_at: u64,
    },
    Inactive,
}

/// The hash a token's answer is kept under (SHA-256, the first 8 bytes).
pub fn token_hash(token: &str) -> u64 {
    let digest = Sha256::digest(token.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

pub fn shard_key(index: usize) -> String {
    format!("oauth2gw/introspection/{index:02x}")
}

fn shard_of(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

struct Entry<'a> {
    hash: u64,
    dies_at: u32,
    active: bool,
    claims: &'a [u8],
}

/// The entries of a shard payload (a torn tail is ignored).
fn entries(bytes: &[u8]) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((head, tail)) = rest.split_first_chunk::<HEADER_BYTES>() {
        let Some((hash, more)) = head.split_first_chunk::<8>() else {
            break;
        };
        let Some((dies, more)) = more.split_first_chunk::<4>() else {
            break;
        };
        let Some((active, len)) = more.split_first_chunk::<1>() else {
            break;
        };
        let Some(len) = len
            .first_chunk::<2>()
            .map(|l| usize::from(u16::from_le_bytes(*l)))
        else {
            break;
        };
        let Some((claims, after)) = tail.split_at_checked(len) else {
            break;
        };
        out.push(Entry {
            hash: u64::from_le_bytes(*hash),
            dies_at: u32::from_le_bytes(*dies),
            active: active[0] == 1,
            claims,
        });
        rest = after;
    }
    out
}

fn encode(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| HEADER_BYTES + e.claims.len()).sum());
    for e in entries {
        out.extend_from_slice(&e.hash.to_le_bytes());
        out.extend_from_slice(&e.dies_at.to_le_bytes());
        out.push(u8::from(e.active));
        let len = u16::try_from(e.claims.len()).unwrap_or(0);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(e.claims.get(..usize::from(len)).unwrap_or(&[]));
    }
    out
}

/// The live answer for `hash` at `now`, if any.
pub fn get(shared: &dyn SharedData, hash: u64, now: u64) -> Option<Cached> {
    let (bytes, _) = shared.get(&shard_key(shard_of(hash)))?;
    let entry = entries(&bytes)
        .into_iter()
        .find(|e| e.hash == hash && u64::from(e.dies_at) > now)?;
    Some(if entry.active {
        Cached::Active {
            claims: entry.claims.to_vec(),
            dies_at: u64::from(entry.dies_at),
        }
    } else {
        Cached::Inactive
    })
}

/// Keeps an answer until `dies_at` (replacing an earlier one for the same token). `capacity` is
/// the whole cache's; a full shard drops the entry that dies first.
pub fn put(
    shared: &dyn SharedData,
    hash: u64,
    answer: Option<&[u8]>,
    dies_at: u64,
    now: u64,
    capacity: usize,
) -> Result<(), SetError> {
    let claims = answer.unwrap_or(&[]);
    if claims.len() > MAX_CLAIMS_BYTES || dies_at <= now {
        return Ok(());
    }
    let per_shard = capacity.div_ceil(SHARDS).max(1);
    let key = shard_key(shard_of(hash));
    let dies_at = u32::try_from(dies_at).unwrap_or(u32::MAX);
    let mut last = SetError::CasMismatch;
    for _ in 0..CAS_ATTEMPTS {
        let (bytes, cas) = match shared.get(&key) {
            Some((bytes, cas)) => (bytes, Some(cas)),
            None => (Vec::new(), None),
        };
        let mut kept: Vec<Entry<'_>> = entries(&bytes)
            .into_iter()
            .filter(|e| e.hash != hash && u64::from(e.dies_at) > now)
            .collect();
        while kept.len() >= per_shard {
            let first = kept
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.dies_at)
                .map(|(i, _)| i);
            match first {
                Some(i) => {
                    kept.swap_remove(i);
                }
                None => break,
            }
        }
        kept.push(Entry {
            hash,
            dies_at,
            active: answer.is_some(),
            claims,
        });
        match shared.set(&key, &encode(&kept), cas) {
            Ok(()) => return Ok(()),
            Err(SetError::Refused) => return Err(SetError::Refused),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_state::MemoryShared;

    #[test]
    fn an_answer_is_kept_until_it_dies_and_replaced_by_a_later_one() {
        let shared = MemoryShared::default();
        let h = token_hash("opaque-1");
        assert_eq!(get(&shared, h, 100), None);
        put(&shared, h, Some(br#"{"sub":"a"}"#), 130, 100, 1024).unwrap();
        assert_eq!(
            get(&shared, h, 129),
            Some(Cached::Active {
                claims: br#"{"sub":"a"}"#.to_vec(),
                dies_at: 130
            })
        );
        assert_eq!(get(&shared, h, 130), None, "dead at dies_at");
        put(&shared, h, None, 140, 131, 1024).unwrap();
        assert_eq!(get(&shared, h, 135), Some(Cached::Inactive));
        assert_eq!(get(&shared, token_hash("opaque-2"), 135), None);
    }

    #[test]
    fn a_full_shard_drops_the_entry_that_dies_first_and_the_raw_token_is_never_stored() {
        let shared = MemoryShared::default();
        // 256 shards, capacity 512: two entries a shard.
        let same_shard: Vec<u64> = (0..3u64).map(|i| (7u64 << 56) | i).collect();
        put(&shared, same_shard[0], Some(b"{}"), 200, 100, 512).unwrap();
        put(&shared, same_shard[1], Some(b"{}"), 150, 100, 512).unwrap();
        put(&shared, same_shard[2], Some(b"{}"), 300, 100, 512).unwrap();
        assert!(get(&shared, same_shard[0], 101).is_some());
        assert!(
            get(&shared, same_shard[1], 101).is_none(),
            "died first: dropped"
        );
        assert!(get(&shared, same_shard[2], 101).is_some());
        put(
            &shared,
            token_hash("secret-token-text"),
            Some(b"{}"),
            200,
            100,
            512,
        )
        .unwrap();
        let all: Vec<u8> = (0..SHARDS)
            .filter_map(|i| shared.get(&shard_key(i)).map(|(b, _)| b))
            .flatten()
            .collect();
        assert!(!all.windows(17).any(|w| w == b"secret-token-text"));
    }

    #[test]
    fn oversized_or_dead_answers_are_not_kept() {
        let shared = MemoryShared::default();
        let h = token_hash("t");
        let big = vec![b'x'; MAX_CLAIMS_BYTES + 1];
        put(&shared, h, Some(&big), 200, 100, 1024).unwrap();
        assert_eq!(get(&shared, h, 101), None);
        put(&shared, h, Some(b"{}"), 100, 100, 1024).unwrap();
        assert_eq!(get(&shared, h, 100), None);
    }
}
