//! The shared denylist, written by the revocation-feed job and by logouts, read by every worker
//! through [`crate::shared_state::denylist::Denylist::sync`].
//!
//! Shared entries (all [versioned](crate::shared_state::update_versioned), so a version moves
//! exactly when content changes):
//! - shard `i`: `[u32 overflow_until]` then entries `[u64 hash][u32 dies_at][u32 cutoff]` sorted
//!   by hash, 16 bytes each (`cutoff`: [`NO_CUTOFF`] for a `jti` or `sid`, else the cut-off
//!   time, see [`crate::shared_state::denylist`]);
//! - the manifest: per shard `[u32 version][u32 first_death]` (32 KB for 4096 shards);
//! - the revision: 8 bytes, the manifest's version, only ever moved forward.
//!
//! A writer changes shards (compare-and-set each), then the manifest, then the revision; a
//! reader reads them in the opposite order, so a reader that saw a revision sees at least the
//! shards it announces. Entries are dropped only once the token they name has expired
//! (`dies_at` = `exp` + [`EXPIRY_MARGIN_SECONDS`]); a full shard refuses new entries and turns
//! fail-closed until the refused token would have expired.

use crate::shared_state::denylist::{
    CutoffKind, ENTRY_BYTES, EXPIRY_MARGIN_SECONDS, IdKind, NO_CUTOFF, SHARDS, cutoff_hash,
    id_hash, keys, manifest_version, shard_of,
};
use crate::shared_state::{CAS_ATTEMPTS, SetError, SharedData, Update, update_versioned};
use std::collections::BTreeMap;

/// Live entries one shard holds; with 4096 shards, 8 M entries on average, 8× the design load of
/// 10⁶ (≈ 244 per shard; the fullest of 4096 shards then holds ≈ 300).
pub const MAX_SHARD_ENTRIES: usize = 2_048;

/// One revocation: an id's hash, when its entry may be dropped (Unix seconds), and its cut-off
/// (tokens issued at or before it are refused; [`NO_CUTOFF`]: all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub hash: u64,
    pub dies_at: u32,
    pub cutoff: u32,
}

fn seconds(at: u64) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

impl Revocation {
    /// A `jti` or `sid` whose tokens expire at `exp`: every token it names is refused.
    pub fn new(kind: IdKind, id: &str, exp: u64) -> Self {
        Revocation {
            hash: id_hash(kind, id),
            dies_at: seconds(exp.saturating_add(EXPIRY_MARGIN_SECONDS)),
            cutoff: NO_CUTOFF,
        }
    }

    /// A cut-off: tokens of `issuer` naming this session or subject issued at or before `at`
    /// are refused, until `forget_at` (when every such token has expired).
    pub fn cutoff(kind: CutoffKind, issuer: &str, id: &str, at: u64, forget_at: u64) -> Self {
        Revocation {
            hash: cutoff_hash(kind, issuer, id),
            dies_at: seconds(forget_at.saturating_add(EXPIRY_MARGIN_SECONDS)),
            // Capped below NO_CUTOFF: a cut-off never reads as "all tokens, forever".
            cutoff: seconds(at).min(NO_CUTOFF - 1),
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Shards whose content changed.
    pub shards_changed: usize,
    /// Entries refused because their shard was full (their shard is now fail-closed).
    pub refused: usize,
    /// Expired entries dropped on the way.
    pub expired: usize,
}

#[derive(Debug, Default)]
struct Shard {
    overflow_until: u32,
    /// (hash, dies_at, cutoff), sorted by hash.
    entries: Vec<(u64, u32, u32)>,
}

impl Shard {
    fn decode(payload: &[u8]) -> Shard {
        let Some((overflow, rest)) = payload.split_first_chunk::<4>() else {
            return Shard::default();
        };
        let chunks = rest.chunks_exact(ENTRY_BYTES);
        // A torn or corrupt shard stays fail-closed for as long as any token can live.
        let overflow_until = if chunks.remainder().is_empty() {
            u32::from_le_bytes(*overflow)
        } else {
            u32::MAX
        };
        let entries = chunks
            .filter_map(|e| {
                let (h, rest) = e.split_first_chunk::<8>()?;
                let (d, c) = rest.split_first_chunk::<4>()?;
                Some((
                    u64::from_le_bytes(*h),
                    u32::from_le_bytes(*d),
                    u32::from_le_bytes(*c.first_chunk::<4>()?),
                ))
            })
            .collect();
        Shard {
            overflow_until,
            entries,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.entries.len() * ENTRY_BYTES);
        out.extend_from_slice(&self.overflow_until.to_le_bytes());
        for (hash, dies_at, cutoff) in &self.entries {
            out.extend_from_slice(&hash.to_le_bytes());
            out.extend_from_slice(&dies_at.to_le_bytes());
            out.extend_from_slice(&cutoff.to_le_bytes());
        }
        out
    }

    /// Drops what died by `now`; returns how many entries.
    fn prune(&mut self, now: u64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(_, d, _)| u64::from(*d) > now);
        if u64::from(self.overflow_until) <= now {
            self.overflow_until = 0;
        }
        before - self.entries.len()
    }

    /// Adds (or extends) an entry, keeping the later expiry and the later cut-off of two;
    /// `false` when the shard is full and refused it.
    fn insert(&mut self, r: Revocation) -> bool {
        match self.entries.binary_search_by_key(&r.hash, |e| e.0) {
            Ok(at) => {
                let entry = &mut self.entries[at];
                entry.1 = entry.1.max(r.dies_at);
                entry.2 = entry.2.max(r.cutoff);
                true
            }
            Err(_) if self.entries.len() >= MAX_SHARD_ENTRIES => {
                self.overflow_until = self.overflow_until.max(r.dies_at);
                false
            }
            Err(at) => {
                self.entries.insert(at, (r.hash, r.dies_at, r.cutoff));
                true
            }
        }
    }

    /// When the next entry (or the overflow) may be dropped; 0 when nothing will.
    fn first_death(&self) -> u32 {
        let entries = self.entries.iter().map(|e| e.1);
        let overflow = (self.overflow_until != 0).then_some(self.overflow_until);
        entries.chain(overflow).min().unwrap_or(0)
    }
}

/// Records revocations in the shared list; entries already present keep the later expiry.
pub fn record(
    shared: &dyn SharedData,
    revocations: &[Revocation],
    now: u64,
) -> Result<WriteReport, SetError> {
    let mut by_shard: BTreeMap<usize, Vec<Revocation>> = BTreeMap::new();
    for r in revocations {
        by_shard.entry(shard_of(r.hash)).or_default().push(*r);
    }
    rewrite(shared, by_shard, now)
}

/// Drops expired entries from the shards that have some (at most `max_shards` of them, to bound
/// one call's work). Returns what it did.
pub fn prune_expired(
    shared: &dyn SharedData,
    now: u64,
    max_shards: usize,
) -> Result<WriteReport, SetError> {
    let (_, manifest) = crate::shared_state::read_versioned(shared, keys::MANIFEST);
    // Inserted one by one: `collect()` into a BTreeMap sorts first, one more copy of the merge
    // sort in the Wasm module, for shards that come in order anyway.
    let mut due: BTreeMap<usize, Vec<Revocation>> = BTreeMap::new();
    for i in (0..SHARDS)
        .filter(|&i| {
            let death = first_death(&manifest, i);
            death != 0 && u64::from(death) <= now
        })
        .take(max_shards)
    {
        due.insert(i, Vec::new());
    }
    rewrite(shared, due, now)
}

fn rewrite(
    shared: &dyn SharedData,
    work: BTreeMap<usize, Vec<Revocation>>,
    now: u64,
) -> Result<WriteReport, SetError> {
    let mut report = WriteReport::default();
    let mut changed: Vec<(usize, u32, u32)> = Vec::new();
    // Every shard touched, changed or not: a shard written by an earlier call whose manifest
    // update failed (its caller retries) is unchanged now but must still be announced.
    let mut touched: Vec<(usize, u32, u32)> = Vec::new();
    for (index, items) in work {
        let (mut refused, mut expired, mut death) = (0, 0, 0);
        let update = update_versioned(shared, &keys::shard(index), |payload| {
            let mut shard = Shard::decode(payload);
            expired = shard.prune(now);
            refused = items.iter().filter(|r| !shard.insert(**r)).count();
            death = shard.first_death();
            Some(shard.encode())
        })?;
        report.refused += refused;
        report.expired += expired;
        match update {
            Update::Changed(version) => changed.push((index, version as u32, death)),
            Update::Unchanged(version) => touched.push((index, version as u32, death)),
        }
    }
    report.shards_changed = changed.len();
    touched.extend_from_slice(&changed);
    if !touched.is_empty() {
        // Announces only versions newer than the manifest lists: nothing moves when nothing is new.
        publish(shared, &touched)?;
    }
    Ok(report)
}

fn first_death(manifest: &[u8], index: usize) -> u32 {
    manifest
        .get(index * 8 + 4..index * 8 + 8)
        .and_then(|b| b.first_chunk::<4>())
        .map_or(0, |b| u32::from_le_bytes(*b))
}

/// Announces changed shards in the manifest (a version never moves back: a slower writer's older
/// news is ignored), then moves the revision forward.
fn publish(shared: &dyn SharedData, changed: &[(usize, u32, u32)]) -> Result<(), SetError> {
    let update = update_versioned(shared, keys::MANIFEST, |current| {
        let mut manifest = current.to_vec();
        manifest.resize(SHARDS * 8, 0);
        for &(index, version, death) in changed {
            let listed = manifest_version(&manifest, index);
            // Newer, with wrap-around (a shard's version is truncated to 32 bits).
            if (version.wrapping_sub(listed) as i32) > 0 {
                manifest[index * 8..index * 8 + 4].copy_from_slice(&version.to_le_bytes());
                manifest[index * 8 + 4..index * 8 + 8].copy_from_slice(&death.to_le_bytes());
            }
        }
        Some(manifest)
    })?;
    let revision = match update {
        Update::Changed(v) | Update::Unchanged(v) => v,
    };
    raise_revision(shared, revision)
}

/// Moves the revision to `revision` unless it is already there or beyond.
fn raise_revision(shared: &dyn SharedData, revision: u64) -> Result<(), SetError> {
    let mut last = SetError::CasMismatch;
    for _ in 0..CAS_ATTEMPTS {
        let (current, cas) = match shared.get(keys::REVISION) {
            Some((bytes, cas)) => (
                bytes
                    .first_chunk::<8>()
                    .map_or(0, |b| u64::from_le_bytes(*b)),
                Some(cas),
            ),
            None => (0, None),
        };
        if current >= revision {
            return Ok(());
        }
        match shared.set(keys::REVISION, &revision.to_le_bytes(), cas) {
            Ok(()) => return Ok(()),
            Err(SetError::Refused) => return Err(SetError::Refused),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Shared bytes the list holds (keys and values), for the benchmarks.
pub fn shared_bytes(shared: &dyn SharedData) -> usize {
    let entry = |key: &str| shared.get(key).map_or(0, |(v, _)| key.len() + v.len());
    (0..SHARDS).map(|i| entry(&keys::shard(i))).sum::<usize>()
        + entry(keys::MANIFEST)
        + entry(keys::REVISION)
}
