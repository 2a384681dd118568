//! Revoked tokens (by `jti`), ended sessions (by `sid`) and **cut-offs**, as one worker sees them:
//! a read-only copy of the shared denylist (see [`crate::shared_state::denylist_store`]), built for a million
//! entries.
//!
//! A cut-off says "tokens of issuer I with session S (or subject U) issued at or before T are
//! refused": what a logout or a back-channel logout means for an IDP that cannot revoke its
//! tokens one by one, or that reuses a session id after logout (keycloak #32197). Tokens issued
//! after T pass, so the next login works. A `jti` or `sid` entry is a cut-off at the end of time.
//!
//! Each entry is kept as a 64-bit SipHash of what it names (a separate hash space for `jti`,
//! `sid`, and an issuer's sessions and subjects), spread over [`SHARDS`] shards by its top bits;
//! each shard is a sorted `Vec<u64>`, with the cut-off times beside them only in shards that have
//! a cut-off. A verified token's hashes are computed once ([`TokenIds`], kept in the token
//! cache); a look-up picks the shard and binary-searches ~250 hashes at a million entries (8
//! steps): no allocation, no string compare. A worker's copy costs 8 bytes per entry (12 in a
//! shard holding cut-offs). When the shared list changes, a worker re-reads only the shards whose
//! version moved.
//!
//! A shard that had to refuse an entry (full, see [`crate::shared_state::denylist_store::MAX_SHARD_ENTRIES`])
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

/// What a cut-off names, within one issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutoffKind {
    /// The issuer's session (`sid`).
    Session,
    /// The issuer's subject (`sub`): every session of that user.
    Subject,
}

/// The cut-off time of a `jti` or `sid` entry: every token it names is refused.
pub const NO_CUTOFF: u32 = u32::MAX;

fn hasher() -> SipHasher13 {
    SipHasher13::new_with_keys(0x6f61_7574_6832_6777, 0x6465_6e79_6c69_7374)
}

/// The hash a revoked id is kept under. Fixed keys: every worker (and every Envoy) must agree.
pub fn id_hash(kind: IdKind, id: &str) -> u64 {
    let mut h = hasher();
    h.write_u8(match kind {
        IdKind::Jti => b'j',
        IdKind::Sid => b's',
    });
    h.write(id.as_bytes());
    h.finish()
}

/// The hash a cut-off is kept under: the issuer and the session or subject it names.
pub fn cutoff_hash(kind: CutoffKind, issuer: &str, id: &str) -> u64 {
    let mut h = hasher();
    h.write_u8(match kind {
        CutoffKind::Session => b'S',
        CutoffKind::Subject => b'U',
    });
    h.write(issuer.as_bytes());
    h.write_u8(0);
    h.write(id.as_bytes());
    h.finish()
}

/// The denylist hashes of one verified token, computed once when it is verified (and kept with
/// it in the token cache), so a request costs no hashing for the denylist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenIds {
    jti: Option<u64>,
    sid: Option<u64>,
    session: Option<u64>,
    subject: Option<u64>,
    /// `iat`, compared with cut-offs; a token without one is older than every cut-off.
    issued_at: u64,
}

impl TokenIds {
    /// The ids of a token of `issuer` with these claims.
    pub fn of(
        issuer: &str,
        jti: Option<&str>,
        sid: Option<&str>,
        sub: Option<&str>,
        iat: Option<u64>,
    ) -> TokenIds {
        TokenIds {
            jti: jti.map(|j| id_hash(IdKind::Jti, j)),
            sid: sid.map(|s| id_hash(IdKind::Sid, s)),
            session: sid.map(|s| cutoff_hash(CutoffKind::Session, issuer, s)),
            subject: sub.map(|s| cutoff_hash(CutoffKind::Subject, issuer, s)),
            issued_at: iat.unwrap_or(0),
        }
    }

    /// Only a `jti` and a `sid` (no issuer: no cut-off can name these ids).
    pub fn unscoped(jti: Option<&str>, sid: Option<&str>) -> TokenIds {
        TokenIds {
            jti: jti.map(|j| id_hash(IdKind::Jti, j)),
            sid: sid.map(|s| id_hash(IdKind::Sid, s)),
            ..TokenIds::default()
        }
    }
}

pub fn shard_of(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

/// The shared-data keys of the list.
pub mod keys {
    /// 8 bytes: the list's revision, read on every request and tick (the only per-request read).
    pub const REVISION: &str = "oauth2gw/denylist2/revision";
    /// Every shard's version (and when its first entry dies), read when the revision moves.
    pub const MANIFEST: &str = "oauth2gw/denylist2/manifest";

    /// The prefix of every key of the list and its feed ("2": entries carry a cut-off time; a
    /// module of the earlier layout in the same Envoy keeps its own keys).
    pub const PREFIX: &str = "oauth2gw/denylist2/";

    pub fn shard(index: usize) -> String {
        format!("oauth2gw/denylist2/shard/{index:03x}")
    }
}

#[derive(Debug, Clone, Default)]
struct LocalShard {
    /// The shard's content version this copy is of (truncated; compared for equality).
    version: u32,
    hashes: Vec<u64>,
    /// `cutoffs[i]` belongs to `hashes[i]`; empty when every entry is [`NO_CUTOFF`] (the shards
    /// of a gateway that only sees `jti` and `sid` revocations cost 8 bytes an entry).
    cutoffs: Vec<u32>,
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
    /// worker at least enforces them (hash, cut-off).
    local_only: Vec<(u64, u32)>,
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
    /// Whether a token with this `jti` or `sid` is refused (hashes them; a request uses
    /// [`Denylist::refuses`] with the hashes kept in the token cache).
    pub fn is_revoked(&self, jti: Option<&str>, sid: Option<&str>) -> bool {
        self.refuses(&TokenIds::unscoped(jti, sid))
    }

    /// Whether the token with these ids is refused: its `jti` or `sid` is listed, or a cut-off
    /// of its issuer's session or subject is at or after its `iat`.
    pub fn refuses(&self, ids: &TokenIds) -> bool {
        if self.entries == 0 && self.fail_closed_shards == 0 && self.local_only.is_empty() {
            return false;
        }
        let refused = |hash: Option<u64>| {
            hash.and_then(|h| self.cutoff_of(h))
                .is_some_and(|cutoff| ids.issued_at <= u64::from(cutoff))
        };
        refused(ids.jti) || refused(ids.sid) || refused(ids.session) || refused(ids.subject)
    }

    /// The cut-off listed for `hash` ([`NO_CUTOFF`] for a `jti`/`sid` entry or a fail-closed
    /// shard), if any.
    fn cutoff_of(&self, hash: u64) -> Option<u32> {
        let listed = self.shards.get(shard_of(hash)).and_then(|s| {
            if s.fail_closed {
                return Some(NO_CUTOFF);
            }
            let at = s.hashes.binary_search(&hash).ok()?;
            Some(s.cutoffs.get(at).copied().unwrap_or(NO_CUTOFF))
        });
        let local = self
            .local_only
            .iter()
            .filter(|(h, _)| *h == hash)
            .map(|(_, c)| *c)
            .max();
        listed.max(local)
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
                .map(|s| s.hashes.capacity() * 8 + s.cutoffs.capacity() * 4)
                .sum::<usize>()
            + self.local_only.capacity() * 12
    }

    /// Enforces a revocation in this copy only (the shared list refused it). Kept until the VM
    /// ends: only for the rare write that lost every compare-and-set.
    pub fn add_local(&mut self, kind: IdKind, id: &str) {
        self.add_local_entry(id_hash(kind, id), NO_CUTOFF);
    }

    /// [`Denylist::add_local`] for an entry already hashed (a cut-off, say), keeping the later
    /// cut-off of two.
    pub fn add_local_entry(&mut self, hash: u64, cutoff: u32) {
        match self.local_only.iter_mut().find(|(h, _)| *h == hash) {
            Some(entry) => entry.1 = entry.1.max(cutoff),
            None => self.local_only.push((hash, cutoff)),
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
            let (hashes, cutoffs, fail_closed) = decode_entries(&payload);
            *local = Arc::new(LocalShard {
                version: version as u32,
                hashes,
                cutoffs,
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

/// The sorted hashes of a shard payload, their cut-offs (empty when all are [`NO_CUTOFF`]), and
/// whether it is fail-closed (see [`crate::shared_state::denylist_store`] for the layout). A corrupt shard is
/// fail-closed.
fn decode_entries(payload: &[u8]) -> (Vec<u64>, Vec<u32>, bool) {
    let Some((overflow, entries)) = payload.split_first_chunk::<4>() else {
        return (Vec::new(), Vec::new(), false);
    };
    let chunks = entries.chunks_exact(ENTRY_BYTES);
    let corrupt = !chunks.remainder().is_empty();
    // Exactly sized: a worker's copy is 8 bytes per entry (12 with cut-offs).
    let mut hashes = Vec::with_capacity(entries.len() / ENTRY_BYTES);
    let mut cutoffs = Vec::new();
    let mut any_cutoff = false;
    for (i, entry) in chunks.enumerate() {
        let field = |at: usize| entry.get(at..at + 4).and_then(|b| b.first_chunk::<4>());
        let (Some(hash), Some(cutoff)) = (entry.first_chunk::<8>(), field(12)) else {
            continue;
        };
        hashes.push(u64::from_le_bytes(*hash));
        let cutoff = u32::from_le_bytes(*cutoff);
        if cutoff != NO_CUTOFF && !any_cutoff {
            any_cutoff = true;
            cutoffs = Vec::with_capacity(entries.len() / ENTRY_BYTES);
            cutoffs.resize(i, NO_CUTOFF);
        }
        if any_cutoff {
            cutoffs.push(cutoff);
        }
    }
    (
        hashes,
        cutoffs,
        corrupt || u32::from_le_bytes(*overflow) != 0,
    )
}

/// Bytes of a shared entry: `[u64 hash][u32 dies_at][u32 cutoff]`.
pub const ENTRY_BYTES: usize = 16;
