//! The shared-state protocol every host implements: a process-wide key-value store with
//! compare-and-set, as proxy-wasm's shared data (one per `vm_id`, visible from every worker).
//! The proxy-wasm glue implements [`SharedData`] over the host's shared data; the native module
//! over process memory; tests use [`MemoryShared`].
//!
//! On top of it: [`read_versioned`]/[`update_versioned`], entries that carry a *content*
//! version (bumped exactly when the bytes change, never by a write that changes nothing), so a
//! reader can tell "changed" from "rewritten".
//!
//! Semantics follow proxy-wasm-cpp-host (the host inside Envoy): a `cas` token changes on every
//! write; a write with `Some(cas)` fails with [`SetError::CasMismatch`] when the entry was
//! written since; a write to a missing key always succeeds (there is no atomic "create if
//! absent"), so creation writes only an empty value, which a racing creator may repeat harmlessly.

pub mod denylist;
pub mod denylist_store;
pub mod discovery;
pub mod feed_page;
pub mod feed_poll;
pub mod feed_sync;
pub mod jwks_share;
pub mod lease;
pub mod refresh;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("the entry was written by someone else since it was read")]
    CasMismatch,
    #[error("the host refused the write")]
    Refused,
}

/// A process-wide key-value store with compare-and-set. `&self`: every worker shares it.
pub trait SharedData {
    /// The value of `key` and its compare-and-set token; `None` when absent.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes `key`. With `Some(cas)`, only if nobody wrote it since `cas` was read (a missing key
    /// is always written).
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError>;
}

/// How many times a read-modify-write is retried against concurrent writers before giving up.
pub const CAS_ATTEMPTS: usize = 16;

/// An in-memory [`SharedData`] with the host's semantics, for tests and benchmarks. `Sync`, so
/// real threads may share it too.
#[derive(Debug, Default)]
pub struct MemoryShared {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    writes: u64,
}

impl MemoryShared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Successful writes so far (to check that nothing was rewritten).
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// Bytes held, keys and values.
    pub fn bytes(&self) -> usize {
        self.lock()
            .entries
            .iter()
            .map(|(k, (v, _))| k.len() + v.len())
            .sum()
    }

    pub fn keys(&self) -> usize {
        self.lock().entries.len()
    }
}

impl SharedData for MemoryShared {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.lock().entries.get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        let mut inner = self.lock();
        if let (Some(cas), Some((_, current))) = (cas, inner.entries.get(key))
            && cas != *current
        {
            return Err(SetError::CasMismatch);
        }
        inner.next_cas = inner.next_cas.wrapping_add(1).max(1);
        let next = inner.next_cas;
        inner.entries.insert(key.to_owned(), (value.to_vec(), next));
        inner.writes += 1;
        Ok(())
    }
}

/// An entry's content version and payload. Absent and unreadable entries read as version 0,
/// empty.
pub fn read_versioned(shared: &dyn SharedData, key: &str) -> (u64, Vec<u8>) {
    match shared.get(key) {
        Some((bytes, _)) => split_versioned(&bytes),
        None => (0, Vec::new()),
    }
}

fn split_versioned(bytes: &[u8]) -> (u64, Vec<u8>) {
    match bytes.split_first_chunk::<8>() {
        Some((version, payload)) => (u64::from_le_bytes(*version), payload.to_vec()),
        None => (0, Vec::new()),
    }
}

/// The content version of a versioned entry without copying its payload out (the host still
/// copies the entry in).
pub fn version_of(shared: &dyn SharedData, key: &str) -> u64 {
    shared
        .get(key)
        .and_then(|(bytes, _)| bytes.first_chunk::<8>().map(|v| u64::from_le_bytes(*v)))
        .unwrap_or(0)
}

/// What [`update_versioned`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// The content changed; this is its new version.
    Changed(u64),
    /// `change` left the content as it was: nothing was written, the version stays.
    Unchanged(u64),
}

/// Read-modify-write of a versioned entry with compare-and-set, retried against concurrent
/// writers. `change` gets the current payload and returns the new one, or `None` to leave it;
/// the entry is written (and its version bumped) only when the bytes differ.
pub fn update_versioned(
    shared: &dyn SharedData,
    key: &str,
    mut change: impl FnMut(&[u8]) -> Option<Vec<u8>>,
) -> Result<Update, SetError> {
    let mut last = SetError::CasMismatch;
    for _ in 0..CAS_ATTEMPTS {
        let (current, cas) = match shared.get(key) {
            Some(entry) => entry,
            None => {
                // No atomic create: write an empty entry (harmless if a racer does too), then
                // compete with compare-and-set like any other time.
                shared.set(key, &0u64.to_le_bytes(), None)?;
                continue;
            }
        };
        let (version, payload) = split_versioned(&current);
        let Some(next) = change(&payload) else {
            return Ok(Update::Unchanged(version));
        };
        if next == payload {
            return Ok(Update::Unchanged(version));
        }
        let version = version.wrapping_add(1).max(1);
        let mut bytes = Vec::with_capacity(8 + next.len());
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&next);
        match shared.set(key, &bytes, Some(cas)) {
            Ok(()) => return Ok(Update::Changed(version)),
            Err(e) => last = e,
        }
        if last == SetError::Refused {
            break;
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_set_follows_the_host() {
        let s = MemoryShared::default();
        assert_eq!(s.get("k"), None);
        assert_eq!(
            s.set("k", b"a", Some(42)),
            Ok(()),
            "a missing key is created"
        );
        let (v, c1) = s.get("k").unwrap_or_default();
        assert_eq!(v, b"a");
        assert_eq!(s.set("k", b"b", Some(c1)), Ok(()));
        assert_eq!(s.set("k", b"c", Some(c1)), Err(SetError::CasMismatch));
        assert_eq!(s.set("k", b"d", None), Ok(()));
        assert_eq!(s.get("k").map(|e| e.0), Some(b"d".to_vec()));
    }

    #[test]
    fn versions_move_exactly_when_content_changes() {
        let s = MemoryShared::default();
        assert_eq!(read_versioned(&s, "k"), (0, Vec::new()));
        let put = |v: &'static [u8]| update_versioned(&s, "k", |_| Some(v.to_vec()));
        assert_eq!(put(b"one"), Ok(Update::Changed(1)));
        let writes = s.writes();
        assert_eq!(put(b"one"), Ok(Update::Unchanged(1)));
        assert_eq!(s.writes(), writes, "an identical write is not made");
        assert_eq!(
            update_versioned(&s, "k", |_| None),
            Ok(Update::Unchanged(1))
        );
        assert_eq!(put(b"two"), Ok(Update::Changed(2)));
        assert_eq!(read_versioned(&s, "k"), (2, b"two".to_vec()));
        assert_eq!(version_of(&s, "k"), 2);
        // Two changes back to back (the same millisecond, say) are two versions.
        assert_eq!(put(b"three"), Ok(Update::Changed(3)));
    }

    /// A store whose every first compare-and-set loses to an interleaved writer.
    struct Contended<'a> {
        inner: &'a MemoryShared,
        interleave: std::cell::Cell<usize>,
    }

    impl SharedData for Contended<'_> {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
            if cas.is_some() && self.interleave.get() > 0 {
                self.interleave.set(self.interleave.get() - 1);
                // Another worker appends "x" between our read and our write.
                update_versioned(self.inner, key, |p| Some([p, b"x"].concat()))?;
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn interleaved_writers_lose_no_update() {
        let s = MemoryShared::default();
        let c = Contended {
            inner: &s,
            interleave: std::cell::Cell::new(3),
        };
        let r = update_versioned(&c, "k", |p| Some([p, b"y"].concat()));
        assert!(matches!(r, Ok(Update::Changed(_))), "{r:?}");
        assert_eq!(read_versioned(&s, "k").1, b"xxxy");
        assert_eq!(read_versioned(&s, "k").0, 4);
        // Endless contention gives up with an error instead of looping.
        let c = Contended {
            inner: &s,
            interleave: std::cell::Cell::new(usize::MAX),
        };
        assert_eq!(
            update_versioned(&c, "k", |p| Some([p, b"z"].concat())),
            Err(SetError::CasMismatch)
        );
    }

    #[test]
    fn threads_appending_concurrently_all_land() {
        let s = MemoryShared::default();
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let s = &s;
                scope.spawn(move || {
                    for _ in 0..50 {
                        // Retry on exhaustion: under real contention 16 attempts may not do.
                        while update_versioned(s, "k", |p| Some([p, &[t][..]].concat())).is_err() {}
                    }
                });
            }
        });
        let (version, payload) = read_versioned(&s, "k");
        assert_eq!(payload.len(), 200);
        assert_eq!(version, 200);
        for t in 0..4u8 {
            assert_eq!(payload.iter().filter(|b| **b == t).count(), 50);
        }
    }
}
