//! Captured log lines: the guest's `proxy_log` calls, its WASI stdout/stderr (Envoy logs those at
//! info/error), and the host's own notes about guest misbehaviour.

pub use crate::abi::LogLevel;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    /// `proxy_log`.
    Guest,
    /// WASI stdout (logged at info, as Envoy does).
    Stdout,
    /// WASI stderr (logged at error, as Envoy does); a Rust panic message lands here.
    Stderr,
    /// The harness itself, about something the guest did (bad arguments, malformed maps…).
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Global order across all VMs of one Envoy.
    pub seq: u64,
    /// Which VM logged it: `main`, `worker-0`, …
    pub vm: String,
    pub level: LogLevel,
    pub source: LogSource,
    pub message: String,
    /// The fake clock's time when it was logged.
    pub at: SystemTime,
}

/// A VM's log, capped; `seq` comes from a counter shared by all VMs of one Envoy.
#[derive(Debug, Default)]
pub(crate) struct LogBook {
    pub(crate) entries: Vec<LogEntry>,
    pub(crate) dropped: u64,
    pub(crate) seq: Arc<AtomicU64>,
    pub(crate) max_entries: usize,
}

impl LogBook {
    pub(crate) fn new(seq: Arc<AtomicU64>, max_entries: usize) -> Self {
        LogBook {
            entries: Vec::new(),
            dropped: 0,
            seq,
            max_entries,
        }
    }

    pub(crate) fn push(
        &mut self,
        vm: &str,
        level: LogLevel,
        source: LogSource,
        message: String,
        at: SystemTime,
    ) {
        if self.entries.len() >= self.max_entries {
            self.dropped += 1;
            return;
        }
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        self.entries.push(LogEntry {
            seq,
            vm: vm.to_owned(),
            level,
            source,
            message,
            at,
        });
    }
}
