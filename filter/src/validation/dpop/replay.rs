//! The DPoP replay cache (RFC 9449 §11.1): every proof `jti` accepted by this gateway, on every
//! worker, until its proof would be refused as stale anyway. Kept in the host's shared data (the
//! Wasm glue: proxy-wasm shared data; the native module: process memory), spread over [`SHARDS`]
//! entries written with compare-and-set, so two workers that see the same proof at once cannot
//! both accept it.
//!
//! A shard is `[u64 hash][u32 dies_at]` entries, 12 bytes each; expired entries are dropped on
//! every write. The cache is bounded: a shard holding its share of the configured capacity
//! refuses new entries, and the proof is refused (fail closed, never accepted unrecorded) until
//! entries expire.
//!
//! The host has no atomic "create if absent": a shard created by one worker while another has
//! just written to it could lose that entry. So every host creates the shards when it is
//! configured, before it serves a request ([`prepare`]); from then on every write is a
//! compare-and-set.

use crate::shared_state::{CAS_ATTEMPTS, SetError, SharedData};
use sha2::{Digest, Sha256};

/// Shards: a power of two (a shard is picked by the hash's top bits).
pub const SHARD_BITS: u32 = 10;
pub const SHARDS: usize = 1 << SHARD_BITS;
/// `[u64 hash][u32 dies_at]`, little-endian.
const ENTRY_BYTES: usize = 12;

/// Why a `jti` could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// Seen before, and its proof is still within its window.
    Replayed,
    /// The shard is full of live entries.
    Full,
    /// The host refused the write, or other writers kept winning.
    Unavailable,
}

/// The shared-data key of a shard.
pub fn shard_key(index: usize) -> String {
    format!("oauth2gw/dpop/jti/{index:03x}")
}

/// The hash a proof is remembered by: its key's thumbprint and its `jti` (a `jti` is unique per
/// key; two clients choosing the same one do not collide).
pub fn proof_hash(jkt: &str, jti: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(jkt.as_bytes());
    h.update([0u8]);
    h.update(jti.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Live entries per shard for a cache of `capacity` entries.
pub fn shard_capacity(capacity: usize) -> usize {
    capacity.div_ceil(SHARDS).max(1)
}

/// The shard `bytes` with its expired entries dropped and `(hash, dies_at)` added, in one pass
/// over the entries and one allocation (a shard is read and rewritten on every DPoP request).
fn with_entry(
    bytes: &[u8],
    hash: u64,
    dies_at: u32,
    now: u64,
    per_shard: usize,
) -> Result<Vec<u8>, ReplayError> {
    let mut out = Vec::with_capacity(bytes.len() + ENTRY_BYTES);
    let mut live = 0;
    for entry in bytes.chunks_exact(ENTRY_BYTES) {
        let (Some(h), Some(d)) = (entry.first_chunk::<8>(), entry.last_chunk::<4>()) else {
            continue;
        };
        if u64::from(u32::from_le_bytes(*d)) <= now {
            continue;
        }
        if u64::from_le_bytes(*h) == hash {
            return Err(ReplayError::Replayed);
        }
        out.extend_from_slice(entry);
        live += 1;
    }
    if live >= per_shard {
        return Err(ReplayError::Full);
    }
    out.extend_from_slice(&hash.to_le_bytes());
    out.extend_from_slice(&dies_at.to_le_bytes());
    Ok(out)
}

/// Creates the shards that do not exist yet (never touches one that does: a reconfigured plugin
/// keeps its cache).
pub fn prepare(shared: &dyn SharedData) {
    for index in 0..SHARDS {
        let key = shard_key(index);
        if shared.get(&key).is_none() {
            let _ = shared.set(&key, &[], None);
        }
    }
}

/// Records a proof seen at `now` that may be replayed until `dies_at` (exclusive). `Ok` only
/// when it was not there and is now recorded.
pub fn record(
    shared: &dyn SharedData,
    hash: u64,
    dies_at: u64,
    now: u64,
    capacity: usize,
) -> Result<(), ReplayError> {
    let key = shard_key((hash >> (64 - SHARD_BITS)) as usize);
    let per_shard = shard_capacity(capacity);
    let dies_at = u32::try_from(dies_at).unwrap_or(u32::MAX);
    for _ in 0..CAS_ATTEMPTS {
        let Some((bytes, cas)) = shared.get(&key) else {
            // No atomic create (see the module's note): write an empty shard, then compete.
            shared
                .set(&key, &[], None)
                .map_err(|_| ReplayError::Unavailable)?;
            continue;
        };
        let entries = with_entry(&bytes, hash, dies_at, now, per_shard)?;
        match shared.set(&key, &entries, Some(cas)) {
            Ok(()) => return Ok(()),
            Err(SetError::CasMismatch) => continue,
            Err(SetError::Refused) => return Err(ReplayError::Unavailable),
        }
    }
    Err(ReplayError::Unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_state::MemoryShared;

    #[test]
    fn a_proof_is_accepted_once_within_its_window() {
        let shared = MemoryShared::default();
        let h = proof_hash("jkt", "jti-1");
        assert_eq!(record(&shared, h, 200, 100, 4096), Ok(()));
        assert_eq!(
            record(&shared, h, 200, 150, 4096),
            Err(ReplayError::Replayed)
        );
        // Another key's proof with the same jti is another proof.
        assert_eq!(
            record(&shared, proof_hash("other", "jti-1"), 200, 150, 4096),
            Ok(())
        );
        // Once its window has passed, the entry is forgotten (the proof is stale by then).
        assert_eq!(record(&shared, h, 300, 200, 4096), Ok(()));
    }

    #[test]
    fn a_full_shard_refuses_until_entries_expire() {
        let shared = MemoryShared::default();
        // Capacity 1024: one entry per shard. Two hashes in the same shard (same top bits).
        let (a, b) = (0xABC0_0000_0000_0001_u64, 0xABC0_0000_0000_0002_u64);
        assert_eq!(record(&shared, a, 200, 100, 1024), Ok(()));
        assert_eq!(record(&shared, b, 200, 100, 1024), Err(ReplayError::Full));
        assert_eq!(record(&shared, b, 300, 200, 1024), Ok(()));
    }

    #[test]
    fn racing_workers_accept_a_proof_once() {
        let shared = MemoryShared::default();
        let h = proof_hash("jkt", "raced");
        prepare(&shared);
        let accepted = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    if record(&shared, h, 200, 100, 4096).is_ok() {
                        accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(accepted.into_inner(), 1);
    }
}
