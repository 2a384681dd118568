//! Sans-IO bookkeeping for background fetches (JWKS, revocation feed) shared by every worker of an
//! Envoy through proxy-wasm shared data. Envoy ticks every thread, so each tick any thread may see
//! that a fetch is due; a lease taken with compare-and-swap makes exactly one of them fetch.
//!
//! Shared entry layout: `"<next_due_ms> <failures> <fetched_at_ms>\n" + payload`.

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

/// A fetch lease: held by one thread until `until_ms`, after which anyone may take it (so a
/// thread that died mid-fetch does not block fetching forever).
pub fn lease_is_free(lease: Option<&[u8]>, now_ms: u64) -> bool {
    match lease.and_then(|b| std::str::from_utf8(b).ok()?.parse::<u64>().ok()) {
        Some(until) => now_ms >= until,
        None => true,
    }
}

pub fn encode_lease(until_ms: u64) -> Vec<u8> {
    until_ms.to_string().into_bytes()
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
    fn lease() {
        assert!(lease_is_free(None, 5));
        assert!(lease_is_free(Some(b"garbage"), 5));
        assert!(!lease_is_free(Some(&encode_lease(10)), 5));
        assert!(lease_is_free(Some(&encode_lease(10)), 10));
    }
}
