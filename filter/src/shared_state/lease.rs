//! One lease implementation for every background job (JWKS refresh, revocation feed): Envoy ticks
//! every thread, so each tick any thread may find a job due; the lease, taken with
//! compare-and-set, makes exactly one of them do it. A lease expires on its own (`until_ms`), so a
//! thread that died mid-job does not block the job forever; releasing is compare-and-set too, so
//! a holder whose lease already expired cannot release the next holder's.
//!
//! Entry: `"<until_ms>"` (0 or unreadable: free).

use crate::shared_state::{SetError, SharedData};

/// A lease this thread holds; give it back with [`HeldLease::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLease {
    key: String,
    /// The compare-and-set token of our own write: release only if it is still ours.
    cas: u32,
}

fn until_of(value: &[u8]) -> u64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Takes the lease at `key` until `now_ms + hold_ms`, if it is free. `None`: someone holds it (or
/// won the race for it).
pub fn try_take(
    shared: &dyn SharedData,
    key: &str,
    now_ms: u64,
    hold_ms: u64,
) -> Option<HeldLease> {
    let (value, cas) = match shared.get(key) {
        Some(entry) => entry,
        None => {
            // First use: create it free (a racing creator writes the same), then compete.
            shared.set(key, b"0", None).ok()?;
            shared.get(key)?
        }
    };
    if now_ms < until_of(&value) {
        return None;
    }
    let until = now_ms.saturating_add(hold_ms).max(1);
    shared
        .set(key, until.to_string().as_bytes(), Some(cas))
        .ok()?;
    // Our write's token, to release only our own lease. Nobody can have taken it in between: it
    // is not free before `until`.
    let (value, cas) = shared.get(key)?;
    (until_of(&value) == until).then(|| HeldLease {
        key: key.to_owned(),
        cas,
    })
}

impl HeldLease {
    /// Frees the lease now, unless it expired and someone else took it meanwhile.
    pub fn release(self, shared: &dyn SharedData) -> Result<(), SetError> {
        shared.set(&self.key, b"0", Some(self.cas))
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_state::MemoryShared;

    #[test]
    fn one_holder_at_a_time_until_release_or_expiry() {
        let s = MemoryShared::default();
        let a = try_take(&s, "l", 1_000, 500);
        assert!(a.is_some());
        assert_eq!(try_take(&s, "l", 1_200, 500), None, "held");
        assert_eq!(a.map(|a| a.release(&s)), Some(Ok(())));
        let b = try_take(&s, "l", 1_300, 500);
        assert!(b.is_some(), "free after release");
        // The holder died: the lease frees itself at `until`.
        assert_eq!(try_take(&s, "l", 1_799, 500), None);
        let c = try_take(&s, "l", 1_800, 500);
        assert!(c.is_some());
        // The late holder's release does not free the new holder's lease.
        assert_eq!(b.map(|b| b.release(&s)), Some(Err(SetError::CasMismatch)));
        assert_eq!(try_take(&s, "l", 1_900, 500), None);
        // Garbage reads as free.
        assert_eq!(s.set("g", b"not a number", None), Ok(()));
        assert!(try_take(&s, "g", 0, 10).is_some());
    }

    #[test]
    fn interleaved_workers_never_both_hold_it() {
        // Every interleaving of two workers' read and compare-and-set steps, simulated: worker A
        // and worker B both read the free lease, then both try to write it.
        let s = MemoryShared::default();
        assert_eq!(s.set("l", b"0", None), Ok(()));
        let (va, ca) = s.get("l").unwrap_or_default();
        let (vb, cb) = s.get("l").unwrap_or_default();
        assert_eq!((until_of(&va), until_of(&vb)), (0, 0));
        assert_eq!(s.set("l", b"600", Some(ca)), Ok(()));
        assert_eq!(s.set("l", b"700", Some(cb)), Err(SetError::CasMismatch));
    }

    #[test]
    fn threads_racing_for_it_get_exactly_one_lease_per_period() {
        // Created before the race, as the glue does at configuration: the host has no atomic
        // create, so two first-ever takers may both win once (a duplicate fetch, harmless).
        let s = MemoryShared::default();
        assert_eq!(s.set("l", b"0", None), Ok(()));
        let winners = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        if try_take(&s, "l", 5_000, 1_000).is_some() {
                            winners.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(winners.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
