//! The schedule of a background fetch (JWKS, revocation feed) shared by every worker of an Envoy:
//! when it is due, how often it failed, when it last succeeded. Envoy ticks every thread, so each
//! tick any thread may see that a fetch is due; the [`crate::shared_state::lease`] makes exactly one of them
//! fetch.
//!
//! A schedule lives in its own shared entry, apart from what is fetched: writing the schedule
//! (backoff, early refresh) never looks like new content to the readers of the content.
//!
//! Entry layout: `"<next_due_ms> <failures> <fetched_at_ms>\n" + payload` (the feed keeps its
//! cursor as the payload; the JWKS schedule has none).

use crate::shared_state::lease::{HeldLease, try_take};
use crate::shared_state::{CAS_ATTEMPTS, SetError, SharedData};

/// The schedule part of a shared entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    /// When the next fetch is due (ms since epoch). 0: now.
    pub next_due_ms: u64,
    /// Consecutive failures since the last success (drives the backoff).
    pub failures: u32,
    /// When the payload was last fetched successfully (0: never).
    pub fetched_at_ms: u64,
}

/// Backoff after failures: 1 s, 2 s, 4 s … capped at `min(interval, 30 s)`.
pub const MAX_BACKOFF_MS: u64 = 30_000;

impl Schedule {
    pub fn is_due(&self, now_ms: u64) -> bool {
        now_ms >= self.next_due_ms
    }

    pub fn after_success(now_ms: u64, interval_ms: u64) -> Self {
        Schedule {
            next_due_ms: now_ms.saturating_add(interval_ms),
            failures: 0,
            fetched_at_ms: now_ms,
        }
    }

    pub fn after_failure(&self, now_ms: u64, interval_ms: u64) -> Self {
        let failures = self.failures.saturating_add(1);
        let exp = 1_000u64.saturating_mul(1u64 << (failures - 1).min(16));
        let backoff = exp.min(interval_ms.min(MAX_BACKOFF_MS)).max(100);
        Schedule {
            next_due_ms: now_ms.saturating_add(backoff),
            failures,
            fetched_at_ms: self.fetched_at_ms,
        }
    }

    /// Asks for a fetch now, unless one happened within `min_gap_ms` (throttle).
    pub fn request_early(&self, now_ms: u64, min_gap_ms: u64) -> Option<Self> {
        let earliest = self.fetched_at_ms.saturating_add(min_gap_ms);
        if self.next_due_ms <= now_ms || now_ms < earliest {
            return None;
        }
        Some(Schedule {
            next_due_ms: now_ms,
            ..*self
        })
    }

    pub fn encode(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "{} {} {}\n",
            self.next_due_ms, self.failures, self.fetched_at_ms
        )
        .into_bytes();
        out.extend_from_slice(payload);
        out
    }

    /// Splits a shared entry into schedule and payload. A corrupt entry reads as "due now, no
    /// payload", so it is repaired by the next fetch rather than trusted.
    pub fn decode(entry: &[u8]) -> (Schedule, &[u8]) {
        let Some(nl) = entry.iter().position(|&b| b == b'\n') else {
            return (Schedule::default(), &[]);
        };
        let header = std::str::from_utf8(&entry[..nl]).unwrap_or("");
        let mut parts = header.split(' ').map(str::parse::<u64>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(due)), Some(Ok(failures)), Some(Ok(fetched)), None) => (
                Schedule {
                    next_due_ms: due,
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                    fetched_at_ms: fetched,
                },
                &entry[nl + 1..],
            ),
            _ => (Schedule::default(), &[]),
        }
    }
}

/// The schedule (and payload) at `key`; absent or corrupt: due now, no payload.
pub fn read(shared: &dyn SharedData, key: &str) -> (Schedule, Vec<u8>) {
    match shared.get(key) {
        Some((entry, _)) => {
            let (schedule, payload) = Schedule::decode(&entry);
            (schedule, payload.to_vec())
        }
        None => (Schedule::default(), Vec::new()),
    }
}

/// Read-modify-write of a schedule entry with compare-and-set. `change` returns the new schedule
/// and payload, or `None` to leave the entry alone. `Ok(true)`: written.
pub fn update(
    shared: &dyn SharedData,
    key: &str,
    mut change: impl FnMut(Schedule, &[u8]) -> Option<(Schedule, Vec<u8>)>,
) -> Result<bool, SetError> {
    let mut last = SetError::CasMismatch;
    for _ in 0..CAS_ATTEMPTS {
        let (entry, cas) = shared.get(key).unwrap_or_default();
        let (schedule, payload) = Schedule::decode(&entry);
        let Some((next, payload)) = change(schedule, payload) else {
            return Ok(false);
        };
        let cas = (!entry.is_empty()).then_some(cas);
        match shared.set(key, &next.encode(&payload), cas) {
            Ok(()) => return Ok(true),
            Err(SetError::Refused) => return Err(SetError::Refused),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A job's two shared entries: its schedule and its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKeys {
    pub schedule: String,
    pub lease: String,
}

impl JobKeys {
    /// If the job is due and this thread wins the lease (held for `hold_ms`), the lease.
    pub fn start_if_due(
        &self,
        shared: &dyn SharedData,
        now_ms: u64,
        hold_ms: u64,
    ) -> Option<HeldLease> {
        if !read(shared, &self.schedule).0.is_due(now_ms) {
            return None;
        }
        try_take(shared, &self.lease, now_ms, hold_ms)
    }

    /// A fetch succeeded: next one in `interval_ms`, the payload (feed cursor) replaced.
    pub fn record_success(
        &self,
        shared: &dyn SharedData,
        now_ms: u64,
        interval_ms: u64,
        payload: &[u8],
    ) -> Result<bool, SetError> {
        update(shared, &self.schedule, |_, _| {
            Some((
                Schedule::after_success(now_ms, interval_ms),
                payload.to_vec(),
            ))
        })
    }

    /// A fetch failed: back off, keep the payload.
    pub fn record_failure(
        &self,
        shared: &dyn SharedData,
        now_ms: u64,
        interval_ms: u64,
    ) -> Result<bool, SetError> {
        update(shared, &self.schedule, |s, p| {
            Some((s.after_failure(now_ms, interval_ms), p.to_vec()))
        })
    }

    /// Asks for a fetch now (throttled, see [`Schedule::request_early`]). `Ok(true)`: asked.
    pub fn request_early(
        &self,
        shared: &dyn SharedData,
        now_ms: u64,
        min_gap_ms: u64,
    ) -> Result<bool, SetError> {
        update(shared, &self.schedule, |s, p| {
            s.request_early(now_ms, min_gap_ms).map(|e| (e, p.to_vec()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption() {
        let s = Schedule {
            next_due_ms: 5,
            failures: 2,
            fetched_at_ms: 3,
        };
        let e = s.encode(b"{\"keys\":[]}");
        assert_eq!(Schedule::decode(&e), (s, &b"{\"keys\":[]}"[..]));
        for bad in [
            &b""[..],
            b"x y z\npayload",
            b"1 2\np",
            b"1 2 3 4\np",
            b"no newline",
        ] {
            assert_eq!(Schedule::decode(bad), (Schedule::default(), &b""[..]));
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut s = Schedule::after_success(0, 300_000);
        assert_eq!(s.next_due_ms, 300_000);
        let mut gaps = Vec::new();
        for _ in 0..8 {
            s = s.after_failure(1_000_000, 300_000);
            gaps.push(s.next_due_ms - 1_000_000);
        }
        assert_eq!(
            gaps,
            [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        assert_eq!(s.fetched_at_ms, 0);
        // a short interval caps the backoff too
        let s = Schedule::default()
            .after_failure(0, 500)
            .after_failure(0, 500);
        assert_eq!(s.next_due_ms, 500);
    }

    #[test]
    fn early_requests_are_throttled() {
        let s = Schedule::after_success(10_000, 300_000);
        assert_eq!(s.request_early(12_000, 5_000), None);
        assert_eq!(
            s.request_early(15_000, 5_000).map(|x| x.next_due_ms),
            Some(15_000)
        );
    }

    #[test]
    fn a_job_runs_once_per_period_and_backs_off_on_failure() {
        let shared = crate::shared_state::MemoryShared::default();
        let job = JobKeys {
            schedule: "s".into(),
            lease: "l".into(),
        };
        let lease = job.start_if_due(&shared, 0, 5_000);
        assert!(lease.is_some(), "never fetched: due");
        assert_eq!(job.start_if_due(&shared, 10, 5_000), None, "leased");
        assert_eq!(job.record_success(&shared, 100, 60_000, b"c7"), Ok(true));
        assert_eq!(lease.map(|l| l.release(&shared)), Some(Ok(())));
        assert_eq!(job.start_if_due(&shared, 200, 5_000), None, "not due");
        assert_eq!(
            read(&shared, "s"),
            (Schedule::after_success(100, 60_000), b"c7".to_vec())
        );
        assert_eq!(job.record_failure(&shared, 60_100, 60_000), Ok(true));
        let (s, payload) = read(&shared, "s");
        assert_eq!(
            (s.next_due_ms, s.failures, payload),
            (61_100, 1, b"c7".to_vec())
        );
        assert_eq!(job.request_early(&shared, 61_000, 0), Ok(true));
        assert!(job.start_if_due(&shared, 61_000, 5_000).is_some());
        // Throttled: no write at all.
        assert_eq!(job.request_early(&shared, 61_001, 1_000_000), Ok(false));
    }
}
