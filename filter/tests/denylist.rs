//! The shared denylist natively, over the in-memory [`MemoryShared`]: content versions, scale,
//! overflow (fail closed), expiry, and simulated workers racing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use filter::shared_state::denylist::{
    Denylist, EXPIRY_MARGIN_SECONDS, IdKind, NO_CUTOFF, SHARDS, keys, shard_of,
};
use filter::shared_state::denylist_store::{
    MAX_SHARD_ENTRIES, Revocation, prune_expired, record, shared_bytes,
};
use filter::shared_state::{MemoryShared, SetError, SharedData, version_of};

const NOW: u64 = 1_700_000_000;

fn jti(id: &str, exp: u64) -> Revocation {
    Revocation::new(IdKind::Jti, id, exp)
}

#[test]
fn a_worker_sees_what_was_recorded_jti_and_sid_apart() {
    let shared = MemoryShared::default();
    let mut worker = Denylist::default();
    assert_eq!(worker.sync(&shared).shards_read, 0);
    assert!(!worker.is_revoked(Some("a"), Some("s")));
    let report = record(
        &shared,
        &[
            jti("a", NOW + 60),
            Revocation::new(IdKind::Sid, "s", NOW + 60),
        ],
        NOW,
    )
    .unwrap();
    assert_eq!(report.refused, 0);
    worker.sync(&shared);
    assert!(worker.is_revoked(Some("a"), None));
    assert!(worker.is_revoked(Some("other"), Some("s")));
    assert!(
        !worker.is_revoked(Some("s"), Some("a")),
        "jti and sid are separate"
    );
    assert!(!worker.is_revoked(None, None));
    assert_eq!(worker.len(), 2);
}

/// Defect 1 (core): versions move exactly when content changes.
#[test]
fn the_revision_moves_exactly_when_content_changes() {
    let shared = MemoryShared::default();
    let mut worker = Denylist::default();
    record(&shared, &[jti("a", NOW + 60)], NOW).unwrap();
    worker.sync(&shared);
    let revision = version_of(&shared, keys::MANIFEST);
    let writes = shared.writes();
    // The same revocation again, and an empty page: nothing is written, no worker re-reads.
    record(&shared, &[jti("a", NOW + 60)], NOW).unwrap();
    record(&shared, &[], NOW).unwrap();
    assert_eq!(shared.writes(), writes);
    assert_eq!(version_of(&shared, keys::MANIFEST), revision);
    assert_eq!(worker.sync(&shared).shards_read, 0);
    // Two changes at the same instant are two revisions, and a worker that synced between them
    // sees the second.
    record(&shared, &[jti("b", NOW + 60)], NOW).unwrap();
    worker.sync(&shared);
    record(&shared, &[jti("c", NOW + 60)], NOW).unwrap();
    assert_eq!(worker.sync(&shared).shards_read, 1);
    assert!(worker.is_revoked(Some("c"), None));
}

/// Defect 3: nothing is dropped while its token can be valid; a full shard fails closed (only
/// for the ids it covers) until the refused token has expired.
#[test]
fn a_full_shard_fails_closed_and_recovers_when_the_refused_token_expires() {
    let shared = MemoryShared::default();
    let in_shard = |shard: u64, i: u64| Revocation {
        hash: (shard << (64 - filter::shared_state::denylist::SHARD_BITS)) | (i + 1),
        dies_at: u32::try_from(NOW + 1_000 + i).unwrap(),
        cutoff: NO_CUTOFF,
    };
    let full: Vec<Revocation> = (0..MAX_SHARD_ENTRIES as u64)
        .map(|i| in_shard(5, i))
        .collect();
    assert_eq!(record(&shared, &full, NOW).unwrap().refused, 0);
    let mut worker = Denylist::default();
    let report = worker.sync(&shared);
    assert_eq!(report.fail_closed_shards, 0);
    // One more, dying late: refused, and shard 5 now refuses everything.
    let late = Revocation {
        hash: (5 << (64 - filter::shared_state::denylist::SHARD_BITS)) | 0xffff_ffff,
        dies_at: u32::try_from(NOW + 50_000).unwrap(),
        cutoff: NO_CUTOFF,
    };
    assert_eq!(record(&shared, &[late], NOW).unwrap().refused, 1);
    assert_eq!(worker.sync(&shared).fail_closed_shards, 1);
    let in_5 = (0..)
        .map(|i| format!("t{i}"))
        .find(|id| shard_of(filter::shared_state::denylist::id_hash(IdKind::Jti, id)) == 5);
    let outside = (0..)
        .map(|i| format!("t{i}"))
        .find(|id| shard_of(filter::shared_state::denylist::id_hash(IdKind::Jti, id)) != 5);
    assert!(
        worker.is_revoked(in_5.as_deref(), None),
        "unknown status: refused"
    );
    assert!(
        !worker.is_revoked(outside.as_deref(), None),
        "other shards unaffected"
    );
    // Every entry the shard holds is still there while alive.
    assert_eq!(worker.len(), MAX_SHARD_ENTRIES);
    // The others expire, room frees up, but the shard stays closed while the refused token lives.
    let report = prune_expired(&shared, NOW + 1_000 + MAX_SHARD_ENTRIES as u64, SHARDS).unwrap();
    assert_eq!(report.expired, MAX_SHARD_ENTRIES);
    assert_eq!(worker.sync(&shared).fail_closed_shards, 1);
    prune_expired(&shared, NOW + 50_000, SHARDS).unwrap();
    assert_eq!(worker.sync(&shared).fail_closed_shards, 0);
    assert!(!worker.is_revoked(in_5.as_deref(), None));
    assert!(worker.is_empty());
}

#[test]
fn entries_die_after_expiry_plus_margin() {
    let shared = MemoryShared::default();
    record(
        &shared,
        &[
            jti("a", NOW),
            Revocation::new(IdKind::Sid, "s", NOW + 5_000),
        ],
        NOW,
    )
    .unwrap();
    let mut worker = Denylist::default();
    prune_expired(&shared, NOW + EXPIRY_MARGIN_SECONDS - 1, SHARDS).unwrap();
    worker.sync(&shared);
    assert!(worker.is_revoked(Some("a"), None));
    prune_expired(&shared, NOW + EXPIRY_MARGIN_SECONDS, SHARDS).unwrap();
    worker.sync(&shared);
    assert!(!worker.is_revoked(Some("a"), None));
    assert!(worker.is_revoked(None, Some("s")));
    // A later expiry for the same id extends it, an earlier one does not shorten it.
    record(
        &shared,
        &[
            jti("b", NOW + 10),
            jti("b", NOW + 9_000),
            jti("b", NOW + 20),
        ],
        NOW,
    )
    .unwrap();
    prune_expired(&shared, NOW + 8_000, SHARDS).unwrap();
    worker.sync(&shared);
    assert!(worker.is_revoked(Some("b"), None));
}

#[test]
fn a_million_entries_are_all_kept_and_a_change_rereads_one_shard() {
    let shared = MemoryShared::default();
    let all: Vec<Revocation> = (0..1_000_000u64)
        .map(|i| jti(&format!("jti-{i}"), NOW + 3_600 + i % 7_200))
        .collect();
    let report = record(&shared, &all, NOW).unwrap();
    assert_eq!(report.refused, 0);
    let mut worker = Denylist::default();
    assert_eq!(worker.sync(&shared).shards_read, SHARDS);
    assert_eq!(worker.len(), 1_000_000);
    for i in [0u64, 1, 499_999, 999_999] {
        assert!(worker.is_revoked(Some(&format!("jti-{i}")), None), "{i}");
    }
    assert!(!worker.is_revoked(Some("jti-1000000"), None));
    // 16 bytes an entry (hash, expiry, cut-off) in the shared list; 8 in a worker's copy.
    assert!(shared_bytes(&shared) < 17 * 1_000_000 + 200_000);
    assert!(worker.heap_bytes() < 9 * 1_000_000);
    record(&shared, &[jti("one-more", NOW + 60)], NOW).unwrap();
    assert_eq!(worker.sync(&shared).shards_read, 1);
    assert!(worker.is_revoked(Some("one-more"), None));
}

/// A store where, before each compare-and-set, another simulated worker records a revocation of
/// its own (the interleaving that loses updates when writers do not compare-and-set).
struct Interleaved<'a> {
    inner: &'a MemoryShared,
    next: std::cell::Cell<u64>,
    budget: std::cell::Cell<u64>,
}

impl SharedData for Interleaved<'_> {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        if cas.is_some() && self.budget.get() > 0 {
            self.budget.set(self.budget.get() - 1);
            let n = self.next.get();
            self.next.set(n + 1);
            record(self.inner, &[jti(&format!("other-{n}"), NOW + 60)], NOW)?;
        }
        self.inner.set(key, value, cas)
    }
}

#[test]
fn interleaved_writers_lose_no_revocation() {
    let shared = MemoryShared::default();
    let racing = Interleaved {
        inner: &shared,
        next: std::cell::Cell::new(0),
        budget: std::cell::Cell::new(6),
    };
    record(
        &racing,
        &[jti("mine-1", NOW + 60), jti("mine-2", NOW + 60)],
        NOW,
    )
    .unwrap();
    let mut worker = Denylist::default();
    worker.sync(&shared);
    assert!(worker.is_revoked(Some("mine-1"), None));
    assert!(worker.is_revoked(Some("mine-2"), None));
    for n in 0..racing.next.get() {
        assert!(
            worker.is_revoked(Some(&format!("other-{n}")), None),
            "other-{n}"
        );
    }
    assert_eq!(worker.len() as u64, 2 + racing.next.get());
}

#[test]
fn threads_writing_and_reading_at_once_converge() {
    let shared = MemoryShared::default();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let shared = &shared;
            scope.spawn(move || {
                for i in 0..300 {
                    let r = [jti(&format!("w{t}-{i}"), NOW + 60)];
                    // Under real contention a write may exhaust its attempts: the caller retries.
                    while record(shared, &r, NOW).is_err() {}
                }
            });
        }
        for _ in 0..2 {
            let shared = &shared;
            scope.spawn(move || {
                let mut reader = Denylist::default();
                for _ in 0..200 {
                    reader.sync(shared);
                }
            });
        }
    });
    let mut worker = Denylist::default();
    worker.sync(&shared);
    assert_eq!(worker.len(), 1_200);
    for t in 0..4 {
        for i in 0..300 {
            assert!(worker.is_revoked(Some(&format!("w{t}-{i}")), None));
        }
    }
}

/// What the native module does on every change: publish a clone of its synced copy. The clone
/// shares every shard; a sync replaces only the changed one, and the old copy keeps its content.
#[test]
fn a_clone_shares_its_shards_and_a_sync_replaces_only_the_changed_one() {
    let shared = MemoryShared::default();
    record(&shared, &[jti("a", NOW + 60)], NOW).unwrap();
    let mut first = Denylist::default();
    first.sync(&shared);
    let mut second = first.clone();
    assert_eq!(first.shards_shared_with(&second), SHARDS);
    record(&shared, &[jti("b", NOW + 60)], NOW).unwrap();
    assert_eq!(second.sync(&shared).shards_read, 1);
    assert_eq!(first.shards_shared_with(&second), SHARDS - 1);
    assert!(second.is_revoked(Some("b"), None) && second.is_revoked(Some("a"), None));
    assert!(
        !first.is_revoked(Some("b"), None),
        "the old snapshot is unchanged"
    );
}

/// A store whose manifest cannot be written (every compare-and-set on it loses), as when other
/// writers keep winning: the shard is written, the announcement is not.
struct ManifestLost<'a>(&'a MemoryShared);

impl SharedData for ManifestLost<'_> {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.0.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        if key == keys::MANIFEST {
            return Err(SetError::CasMismatch);
        }
        self.0.set(key, value, cas)
    }
}

/// A write whose shard landed but whose manifest update failed is retried by its caller; the
/// retry finds the shard already holding the entry (no change) and must still announce it, or a
/// worker that never read that shard would never see the revocation.
#[test]
fn a_retried_write_announces_a_shard_written_before_its_manifest_update_failed() {
    let shared = MemoryShared::default();
    let revocation = [jti("lost-announcement", NOW + 60)];
    assert!(record(&ManifestLost(&shared), &revocation, NOW).is_err());
    record(&shared, &revocation, NOW).unwrap();
    let mut worker = Denylist::default();
    worker.sync(&shared);
    assert!(worker.is_revoked(Some("lost-announcement"), None));
}
