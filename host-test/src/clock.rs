//! One fake clock for the whole simulated Envoy: it answers `proxy_get_current_time_nanoseconds`,
//! WASI's wall and monotonic clocks, tick scheduling and HTTP-call deadlines. It only moves when a
//! test moves it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2026-01-01T00:00:00Z: the default start, fixed so runs are reproducible.
pub const DEFAULT_START_UNIX_SECONDS: u64 = 1_767_225_600;

/// A shared, manually advanced clock. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct Clock {
    /// Nanoseconds since the Unix epoch.
    unix_nanos: Arc<AtomicU64>,
    /// The value of `unix_nanos` when the clock was created: the monotonic clock's zero.
    origin: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::at(UNIX_EPOCH + Duration::from_secs(DEFAULT_START_UNIX_SECONDS))
    }
}

impl Clock {
    /// A clock reading `start` (clamped to the Unix epoch and to ~year 2554).
    pub fn at(start: SystemTime) -> Self {
        let nanos = start
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Clock {
            unix_nanos: Arc::new(AtomicU64::new(nanos)),
            origin: nanos,
        }
    }

    /// Current wall time.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.unix_nanos())
    }

    /// Current wall time in nanoseconds since the Unix epoch (what the proxy clock returns).
    pub fn unix_nanos(&self) -> u64 {
        self.unix_nanos.load(Ordering::SeqCst)
    }

    /// Current wall time in whole seconds since the Unix epoch (handy for JWT `exp`/`iat`).
    pub fn unix_seconds(&self) -> u64 {
        self.unix_nanos() / 1_000_000_000
    }

    /// Nanoseconds since the clock was created; never goes backwards.
    pub fn monotonic_nanos(&self) -> u64 {
        self.unix_nanos().saturating_sub(self.origin)
    }

    /// Moves time forward. This does not fire timers: use the `Envoy`'s `advance` for that.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update cannot fail with a closure that always returns Some.
        let _ = self
            .unix_nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Moves time forward to `unix_nanos` if it is later than now.
    pub(crate) fn advance_to(&self, unix_nanos: u64) {
        self.unix_nanos.fetch_max(unix_nanos, Ordering::SeqCst);
    }

    /// Moves time forward to the monotonic instant `nanos` if it is later than now.
    pub(crate) fn advance_to_monotonic(&self, nanos: u64) {
        self.advance_to(self.origin.saturating_add(nanos));
    }

    pub(crate) fn wasi_wall(&self) -> WasiWallClock {
        WasiWallClock(self.clone())
    }

    pub(crate) fn wasi_monotonic(&self) -> WasiMonotonicClock {
        WasiMonotonicClock(self.clone())
    }
}

/// The fake clock seen through WASI's `clock_time_get(realtime)`.
pub(crate) struct WasiWallClock(Clock);

impl wasmtime_wasi::HostWallClock for WasiWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.unix_nanos())
    }
}

/// The fake clock seen through WASI's `clock_time_get(monotonic)`.
pub(crate) struct WasiMonotonicClock(Clock);

impl wasmtime_wasi::HostMonotonicClock for WasiMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0.monotonic_nanos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_time_and_monotonic_starts_at_zero() {
        let clock = Clock::default();
        let other = clock.clone();
        assert_eq!(clock.unix_seconds(), DEFAULT_START_UNIX_SECONDS);
        assert_eq!(clock.monotonic_nanos(), 0);
        other.advance(Duration::from_millis(1500));
        assert_eq!(clock.monotonic_nanos(), 1_500_000_000);
        assert_eq!(clock.unix_seconds(), DEFAULT_START_UNIX_SECONDS + 1);
        clock.advance_to(0);
        assert_eq!(
            clock.monotonic_nanos(),
            1_500_000_000,
            "never goes backwards"
        );
    }
}
