//! Everything one VM's hostcalls read and write: the `T` of its `Store<T>`. State shared between
//! the VMs of one Envoy (clock, shared data, queues, metrics) sits behind `Arc`s in [`Shared`].

use crate::abi::{LogLevel, Status};
use crate::clock::Clock;
use crate::foreign::ForeignFunctions;
use crate::http_calls::{CallResponse, HttpCalls};
use crate::limits::Limits;
use crate::logs::{LogBook, LogSource};
use crate::metrics::{MetricIds, Metrics};
use crate::shared_data::SharedData;
use crate::shared_queue::SharedQueues;
use crate::stream::Stream;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use wasmtime::StoreLimits;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// What the VMs of one simulated Envoy share.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub clock: Clock,
    pub data: SharedData,
    pub queues: SharedQueues,
    pub metrics: Metrics,
    pub log_seq: Arc<AtomicU64>,
}

impl Shared {
    pub fn new(clock: Clock, limits: &Limits) -> Self {
        Shared {
            clock,
            data: SharedData::new(limits.max_shared_data_bytes),
            queues: SharedQueues::new(limits.max_queue_messages),
            metrics: Metrics::new(limits.max_metrics, limits.max_histogram_values),
            log_seq: Arc::default(),
        }
    }
}

/// The plugin as Envoy configured it.
#[derive(Debug, Clone)]
pub(crate) struct Plugin {
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
    pub configuration: Vec<u8>,
    pub vm_configuration: Vec<u8>,
    /// Clusters `proxy_http_call` may target; `None`: any.
    pub clusters: Option<BTreeSet<String>>,
    /// Extra properties by dotted path (`node.id`, `xds.cluster_name`…).
    pub properties: BTreeMap<String, Vec<u8>>,
    pub log_level: LogLevel,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Tick {
    pub period: Duration,
    /// Monotonic nanoseconds of the next firing.
    pub next_at: u64,
}

/// The context whose callback runs, and the one `proxy_set_effective_context` selected.
#[derive(Debug, Default)]
pub(crate) struct Contexts {
    pub root: u32,
    pub next_id: u32,
    pub current: u32,
    pub effective: u32,
}

impl Contexts {
    /// The context hostcalls act on now.
    pub fn active(&self) -> u32 {
        if self.effective != 0 {
            self.effective
        } else {
            self.current
        }
    }
}

pub struct HostState {
    pub(crate) name: String,
    pub(crate) index: usize,
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) store_limits: StoreLimits,
    pub(crate) limits: Limits,
    pub(crate) plugin: Plugin,
    pub(crate) shared: Shared,
    pub(crate) logs: LogBook,
    pub(crate) contexts: Contexts,
    pub(crate) streams: BTreeMap<u32, Stream>,
    /// `proxy_on_configure` is running: the plugin configuration buffer is readable.
    pub(crate) configuring: bool,
    pub(crate) tick: Option<Tick>,
    pub(crate) http_calls: HttpCalls,
    pub(crate) call_response: Option<CallResponse>,
    /// `proxy_get_status`: code and message of the last call failure.
    pub(crate) status: (u32, String),
    pub(crate) metric_ids: MetricIds,
    /// Properties the guest set with `proxy_set_property`, by dotted path.
    pub(crate) set_properties: BTreeMap<String, Vec<u8>>,
    pub(crate) foreign: ForeignFunctions,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) stdio_seen: (usize, usize),
    /// The root context called `proxy_done`.
    pub(crate) done_called: bool,
    /// Calls the guest made to hostcalls the harness does not implement, by name.
    pub(crate) unimplemented_calls: BTreeMap<&'static str, u64>,
}

impl HostState {
    /// Logs a note from the host about the guest's behaviour.
    pub(crate) fn note(&mut self, level: LogLevel, message: String) {
        let at = self.shared.clock.now();
        self.logs
            .push(&self.name, level, LogSource::Host, message, at);
    }

    pub(crate) fn unimplemented(&mut self, hostcall: &'static str) -> Status {
        *self.unimplemented_calls.entry(hostcall).or_default() += 1;
        self.note(
            LogLevel::Warn,
            format!("{hostcall}: not implemented by the harness"),
        );
        Status::Unimplemented
    }

    /// The stream the active context is, if it is one.
    pub(crate) fn active_stream(&mut self) -> Option<&mut Stream> {
        let id = self.contexts.active();
        self.streams.get_mut(&id)
    }

    /// Moves WASI stdout/stderr written since last time into the log.
    pub(crate) fn collect_stdio(&mut self) {
        let out = self.stdout.contents();
        let err = self.stderr.contents();
        let (seen_out, seen_err) = self.stdio_seen;
        let new_out = out.get(seen_out..).map(<[u8]>::to_vec).unwrap_or_default();
        let new_err = err.get(seen_err..).map(<[u8]>::to_vec).unwrap_or_default();
        self.stdio_seen = (out.len(), err.len());
        for (bytes, level, source) in [
            (new_out, LogLevel::Info, LogSource::Stdout),
            (new_err, LogLevel::Error, LogSource::Stderr),
        ] {
            if bytes.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            let at = self.shared.clock.now();
            for line in text.lines().filter(|l| !l.is_empty()) {
                self.logs
                    .push(&self.name, level, source, line.to_owned(), at);
            }
        }
    }
}
