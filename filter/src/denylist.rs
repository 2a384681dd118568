//! Revoked tokens (by `jti`) and ended sessions (by `sid`), as one worker sees them: a read-only
//! copy of the shared denylist (see [`crate::denylist_store`]), built for a million entries.
//!
//! Each revoked id is kept as a 64-bit SipHash of the id (a separate hash space for `jti` and
//! `sid`), spread over [`SHARDS`] shards by its top bits; each shard is a sorted `Vec<u64>`.
//! A look-up hashes the id, picks the shard and binary-searches ~250 hashes at a million entries
//! (8 steps): no allocation, no string compare. A worker's copy costs 8 bytes per entry. When
//! the shared list changes, a worker re-reads only the shards whose version moved.
//!
//! A shard that had to refuse an entry (full, see [`crate::denylist_store::MAX_SHARD_ENTRIES`])
//! is *fail-closed*: every id hashing into it reads as revoked until the refused entry's token
//! has expired, so an overflow never lets a revoked token through.
//!
//! A hash collision makes a valid token read as revoked (fail closed, never open); with 10⁶
//! entries the chance for a given token is ≈ 10⁶ / 2⁶⁴ ≈ 5·10⁻¹⁴.

use crate::shared_state::{SharedData, read_versioned};
use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use std::sync::Arc;

/// Shards of the list: a power of two (a shard is picked by the hash's top bits).
pub const SHARD_BITS: u32 = 12;
pub const SHARDS: usize = 1 << SHARD_BITS;
/// Entries outlive the token's `exp` by this much, since a provider may accept a token for up to
/// its leeway (at most 300 s) after `exp`.
pub const EXPIRY_MARGIN_SECONDS: u64 = 300;

/// What an entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Jti,
    Sid,
}

/// The hash a revoked id is kept under. Fixed keys: every worker (and every Envoy) must agree.
pub fn id_hash(kind: IdKind, id: &str) -> u64 {
    let mut h = SipHasher13::new_with_keys(0x6f61_7574_6832_6777, 0x6465_6e79_6c69_7374);
    h.write_u8(match kind {
        IdKind::Jti => b'j',
        IdKind::Sid => b's',
    });
    h.write(id.as_bytes());
    h.finish()
}

pub fn shard_of(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

/// The shared-data keys of the list.
pub mod keys {
    /// 8 bytes: the list's revision, read on every request and tick (the only per-request read).
    pub const REVISION: &str = "oauth2gw/denylist/revision";
    /// Every shard's version (and when its first entry dies), read when the revision moves.
    pub const MANIFEST: &str = "oauth2gw/denylist/manifest";

    pub fn shard(index: usize) -> String {
        format!("oauth2gw/denylist/shard/{index:03x}")
    }
}

#[derive(Debug, Clone, Default)]
struct LocalShard {
    /// The shard's content version this copy is of (truncated; compared for equality).
    version: u32,
    hashes: Vec<u64>,
    fail_closed: bool,
}

/// One worker's copy of the denylist.
#[derive(Debug, Clone, Default)]
pub struct Denylist {
    /// The shared revision this copy is up to date with; `None`: never synced.
    revision: Option<u64>,
    /// `SHARDS` shards once synced (empty before). Shared between copies: cloning a denylist
    /// (the native module publishes a new snapshot on every change) copies one pointer per shard,
    /// and a sync replaces only the shards that changed.
    shards: Vec<Arc<LocalShard>>,
    entries: usize,
    fail_closed_shards: usize,
    /// Revocations recorded here that the shared list could not take (contention): kept so this
    /// worker at least enforces them.
    local_only: Vec<u64>,
}

/// What a [`Denylist::sync`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Shards re-read (0: nothing changed).
    pub shards_read: usize,
    /// Shards refusing every token (an overflow), after the sync.
    pub fail_closed_shards: usize,
}

impl Denylist {
    pub fn is_revoked(&self, jti: Option<&str>, sid: Option<&str>) -> bool {
        if self.entries == 0 && self.fail_closed_shards == 0 && self.local_only.is_empty() {
            return false;
        }
        jti.is_some_and(|j| self.contains(id_hash(IdKind::Jti, j)))
            || sid.is_some_and(|s| self.contains(id_hash(IdKind::Sid, s)))
    }

    fn contains(&self, hash: u64) -> bool {
        let listed = self
            .shards
            .get(shard_of(hash))
            .is_some_and(|s| s.fail_closed || s.hashes.binary_search(&hash).is_ok());
        listed || self.local_only.contains(&hash)
    }

    /// Entries in this copy.
    pub fn len(&self) -> usize {
        self.entries + self.local_only.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many shards this copy shares with `other` (the same memory, not equal content): a
    /// clone shares all of them until one of the two syncs a change.
    pub fn shards_shared_with(&self, other: &Denylist) -> usize {
        self.shards
            .iter()
            .zip(&other.shards)
            .filter(|(mine, theirs)| Arc::ptr_eq(mine, theirs))
            .count()
    }

    pub fn fail_closed_shards(&self) -> usize {
        self.fail_closed_shards
    }

    /// Bytes this copy holds on the heap (shard table and hashes; shards shared with other
    /// copies are counted in each).
    pub fn heap_bytes(&self) -> usize {
        self.shards.capacity()
            * (std::mem::size_of::<Arc<LocalShard>>() + std::mem::size_of::<LocalShard>())
            + self
                .shards
                .iter()
                .map(|s| s.hashes.capacity() * 8)
                .sum::<usize>()
            + self.local_only.capacity() * 8
    }

    /// Enforces a revocation in this copy only (the shared list refused it). Kept until the VM
    /// ends: only for the rare write that lost every compare-and-set.
    pub fn add_local(&mut self, kind: IdKind, id: &str) {
        let hash = id_hash(kind, id);
        if !self.local_only.contains(&hash) {
            self.local_only.push(hash);
        }
    }

    /// [`Denylist::add_local`] for a `jti` (`exp` is not needed by a copy: the shared list
    /// expires entries).
    pub fn revoke_jti(&mut self, jti: &str, _exp: u64) {
        self.add_local(IdKind::Jti, jti);
    }

    /// [`Denylist::add_local`] for a `sid`.
    pub fn revoke_sid(&mut self, sid: &str, _exp: u64) {
        self.add_local(IdKind::Sid, sid);
    }

    /// Brings this copy up to date with the shared list: one 8-byte read when nothing changed;
    /// otherwise the manifest and the shards whose version moved.
    pub fn sync(&mut self, shared: &dyn SharedData) -> SyncReport {
        let revision = shared
            .get(keys::REVISION)
            .and_then(|(b, _)| b.first_chunk::<8>().map(|r| u64::from_le_bytes(*r)));
        let Some(revision) = revision else {
            return self.report(0);
        };
        if self.revision == Some(revision) {
            return self.report(0);
        }
        let (_, manifest) = read_versioned(shared, keys::MANIFEST);
        if self.shards.is_empty() {
            // One empty shard shared by every slot until its own content arrives.
            let empty = Arc::new(LocalShard::default());
            self.shards = std::iter::repeat_n(empty, SHARDS).collect();
        }
        let mut read = 0;
        for (index, local) in self.shards.iter_mut().enumerate() {
            let listed = manifest_version(&manifest, index);
            if listed == local.version {
                continue;
            }
            let (version, payload) = read_versioned(shared, &keys::shard(index));
            self.entries -= local.hashes.len();
            self.fail_closed_shards -= usize::from(local.fail_closed);
            let (hashes, fail_closed) = decode_hashes(&payload);
            *local = Arc::new(LocalShard {
                version: version as u32,
                hashes,
                fail_closed,
            });
            self.entries += local.hashes.len();
            self.fail_closed_shards += usize::from(local.fail_closed);
            read += 1;
        }
        self.revision = Some(revision);
        self.report(read)
    }

    fn report(&self, shards_read: usize) -> SyncReport {
        SyncReport {
            shards_read,
            fail_closed_shards: self.fail_closed_shards,
        }
    }
}

/// A shard's version as the manifest lists it (0: never written).
pub(crate) fn manifest_version(manifest: &[u8], index: usize) -> u32 {
    manifest
        .get(index * 8..index * 8 + 4)
        .and_then(|b| b.first_chunk::<4>())
        .map_or(0, |b| u32::from_le_bytes(*b))
}

/// The sorted hashes of a shard payload and whether it is fail-closed (see
/// [`crate::denylist_store`] for the layout). A corrupt shard is fail-closed.
fn decode_hashes(payload: &[u8]) -> (Vec<u64>, bool) {
    let Some((overflow, entries)) = payload.split_first_chunk::<4>() else {
        return (Vec::new(), false);
    };
    let chunks = entries.chunks_exact(12);
    let corrupt = !chunks.remainder().is_empty();
    // Exactly sized: a worker's copy is 8 bytes per entry.
    let mut hashes = Vec::with_capacity(entries.len() / 12);
    hashes.extend(chunks.filter_map(|e| e.first_chunk::<8>().map(|h| u64::from_le_bytes(*h))));
    (hashes, corrupt || u32::from_le_bytes(*overflow) != 0)
}
