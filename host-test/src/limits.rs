//! Caps that keep a hostile or runaway guest from taking the test process down with it (the same
//! idea as proxy-wasm-cpp-host's `limits.h`).

/// Resource caps for one VM. The defaults are generous for a filter and small for a test process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (≈ wasm instructions) allowed per call into the guest; running out is reported as a
    /// runaway guest. Nested hostcalls that call back into the guest share it.
    pub fuel_per_call: u64,
    /// Maximum linear memory of the guest.
    pub max_memory_bytes: usize,
    /// Largest single read of guest memory a hostcall will do (keys, values, bodies, messages).
    pub max_read_bytes: usize,
    /// Largest serialised header map accepted from the guest.
    pub max_pairs_bytes: usize,
    /// Most pairs accepted in one serialised header map.
    pub max_pairs_count: usize,
    /// Log entries kept per VM; later ones are counted as dropped.
    pub max_log_entries: usize,
    /// HTTP calls one VM may have in flight.
    pub max_pending_http_calls: usize,
    /// Total bytes of shared data (keys + values) across the whole simulated Envoy.
    pub max_shared_data_bytes: usize,
    /// Metrics that may be defined across the simulated Envoy.
    pub max_metrics: usize,
    /// Values kept per histogram.
    pub max_histogram_values: usize,
    /// Messages a shared queue holds before `enqueue` fails.
    pub max_queue_messages: usize,
    /// Bytes of guest stdout/stderr captured per VM.
    pub max_stdio_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel_per_call: 2_000_000_000,
            max_memory_bytes: 256 << 20,
            max_read_bytes: 16 << 20,
            max_pairs_bytes: 1 << 20,
            max_pairs_count: 1024,
            max_log_entries: 100_000,
            max_pending_http_calls: 1024,
            max_shared_data_bytes: 64 << 20,
            max_metrics: 10_000,
            max_histogram_values: 100_000,
            max_queue_messages: 10_000,
            max_stdio_bytes: 1 << 20,
        }
    }
}
