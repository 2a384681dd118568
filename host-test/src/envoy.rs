//! A simulated Envoy: one VM for the main thread and one per worker, all running the same plugin
//! and sharing one clock, shared data, shared queues and stats, as in a real Envoy process.

use crate::abi::LogLevel;
use crate::clock::{Clock, DEFAULT_START_UNIX_SECONDS};
use crate::error::{HostError, Result};
use crate::foreign::ForeignFunctions;
use crate::host::{Host, shared_for};
use crate::http::{Outcome, Request, Response};
use crate::http_calls::{CallAnswer, CallId, HttpCall};
use crate::limits::Limits;
use crate::logs::LogEntry;
use crate::metrics::MetricValue;
use crate::state::Shared;
use crate::vm::{StartReport, Vm};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How the simulated Envoy is set up. `Default` gives 2 workers and an empty configuration.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// Worker threads (each gets its own VM, besides the main thread's).
    pub workers: usize,
    /// The plugin configuration (`proxy_on_configure` reads it).
    pub plugin_config: Vec<u8>,
    /// The VM configuration (`proxy_on_vm_start` reads it).
    pub vm_config: Vec<u8>,
    pub plugin_name: String,
    pub root_id: String,
    /// Shared data and queues are scoped by `vm_id`.
    pub vm_id: String,
    /// Clusters `proxy_http_call` may target (`BadArgument` otherwise, as in Envoy). `None`
    /// accepts any name.
    pub clusters: Option<BTreeSet<String>>,
    /// Extra properties by dotted path, e.g. `node.id`.
    pub properties: BTreeMap<String, Vec<u8>>,
    pub foreign_functions: ForeignFunctions,
    /// What `proxy_get_log_level` answers (every level is captured regardless).
    pub log_level: LogLevel,
    pub start_time: SystemTime,
    pub limits: Limits,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            workers: 2,
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            plugin_name: "plugin".to_owned(),
            root_id: String::new(),
            vm_id: String::new(),
            clusters: None,
            properties: BTreeMap::new(),
            foreign_functions: ForeignFunctions::default(),
            log_level: LogLevel::Info,
            start_time: UNIX_EPOCH + Duration::from_secs(DEFAULT_START_UNIX_SECONDS),
            limits: Limits::default(),
        }
    }
}

impl EnvoyOptions {
    pub fn new() -> Self {
        EnvoyOptions::default()
    }

    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    pub fn plugin_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.plugin_config = config.into();
        self
    }

    pub fn vm_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.vm_config = config.into();
        self
    }

    pub fn plugin_name(mut self, name: &str) -> Self {
        self.plugin_name = name.to_owned();
        self
    }

    /// Declares the clusters that exist; calls to others fail with `BadArgument`.
    pub fn clusters<I: IntoIterator<Item = S>, S: Into<String>>(mut self, clusters: I) -> Self {
        self.clusters = Some(clusters.into_iter().map(Into::into).collect());
        self
    }

    pub fn property(mut self, path: &str, value: impl Into<Vec<u8>>) -> Self {
        self.properties.insert(path.to_owned(), value.into());
        self
    }

    pub fn foreign_functions(mut self, functions: ForeignFunctions) -> Self {
        self.foreign_functions = functions;
        self
    }

    /// Runs as if the host lacked foreign function `name`.
    pub fn without_foreign_function(mut self, name: &str) -> Self {
        self.foreign_functions = self.foreign_functions.without(name);
        self
    }

    pub fn start_time(mut self, at: SystemTime) -> Self {
        self.start_time = at;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// The simulated Envoy. VM 0 is the main thread; workers are 1..=n.
pub struct Envoy {
    shared: Shared,
    options: EnvoyOptions,
    vms: Vec<Vm>,
    next_worker: usize,
}

/// At most this many rounds of queue notifications per driver step (guards against ping-pong).
const MAX_QUEUE_ROUNDS: usize = 1000;

impl Envoy {
    pub(crate) fn start(host: &Host, options: EnvoyOptions) -> Result<Self> {
        let shared = shared_for(&options);
        let mut vms = Vec::with_capacity(options.workers + 1);
        // Envoy starts the main thread's VM first, then clones it for every worker.
        for index in 0..=options.workers {
            let name = match index {
                0 => "main".to_owned(),
                n => format!("worker-{}", n - 1),
            };
            let mut vm = host.instantiate(&options, &shared, index, &name)?;
            vm.start()?;
            vms.push(vm);
        }
        let mut envoy = Envoy {
            shared,
            options,
            vms,
            next_worker: 0,
        };
        envoy.deliver_queue_events()?;
        Ok(envoy)
    }

    pub fn options(&self) -> &EnvoyOptions {
        &self.options
    }

    /// The fake clock every VM reads.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// The main thread's VM.
    pub fn main(&mut self) -> &mut Vm {
        &mut self.vms[0]
    }

    /// Worker `i`'s VM (0-based).
    ///
    /// # Panics
    /// If there is no such worker.
    pub fn worker(&mut self, i: usize) -> &mut Vm {
        assert!(
            i < self.options.workers,
            "there are only {} workers",
            self.options.workers
        );
        &mut self.vms[i + 1]
    }

    /// Every VM, main first.
    pub fn vms(&self) -> &[Vm] {
        &self.vms
    }

    pub fn workers(&self) -> usize {
        self.options.workers
    }

    /// Each VM's start report, main first.
    pub fn start_reports(&self) -> Vec<StartReport> {
        self.vms.iter().map(Vm::start_report).collect()
    }

    /// Every VM started and accepted its configuration.
    pub fn configured(&self) -> bool {
        self.vms
            .iter()
            .all(|vm| vm.start_report().vm_started && vm.start_report().configured)
    }

    /// Sends a request to the next worker (round robin, as connections spread over workers).
    pub fn request(&mut self, request: Request) -> Result<Outcome> {
        if self.options.workers == 0 {
            return Err(HostError::Usage("this Envoy has no workers".to_owned()));
        }
        let worker = self.next_worker % self.options.workers;
        self.next_worker += 1;
        let outcome = self.vms[worker + 1].request(request)?;
        self.deliver_queue_events()?;
        Ok(outcome)
    }

    /// Fires every VM's tick now, main first (each VM that has a tick period).
    pub fn tick_all(&mut self) -> Result<()> {
        for i in 0..self.vms.len() {
            self.vms[i].tick()?;
            self.deliver_queue_events()?;
        }
        Ok(())
    }

    /// Moves time forward by `by`, firing ticks and HTTP-call timeouts in time order as they
    /// fall due (a timed-out call gets Envoy's 504 "upstream request timeout").
    pub fn advance(&mut self, by: Duration) -> Result<()> {
        self.advance_with(by, |_| Ok(()))
    }

    /// [`Envoy::advance`], calling `after_event` after every tick or timeout (at that instant),
    /// e.g. to answer the calls a tick made before their timeout runs.
    pub fn advance_with(
        &mut self,
        by: Duration,
        mut after_event: impl FnMut(&mut Envoy) -> Result<()>,
    ) -> Result<()> {
        let target = self
            .clock()
            .monotonic_nanos()
            .saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
        while let Some((at, event)) = self.next_event(target) {
            self.shared.clock.advance_to_monotonic(at);
            match event {
                Event::Tick(vm) => self.vms[vm].tick()?,
                Event::Timeout(id) => self.vms[id.vm]
                    .answer_http_call(id.token, CallAnswer::Response(Response::envoy_timeout()))?,
            }
            self.deliver_queue_events()?;
            after_event(self)?;
        }
        self.shared.clock.advance_to_monotonic(target);
        Ok(())
    }

    /// The earliest tick or timeout at or before `target`.
    fn next_event(&self, target: u64) -> Option<(u64, Event)> {
        let ticks = self
            .vms
            .iter()
            .enumerate()
            .filter_map(|(i, vm)| vm.next_tick_at().map(|at| (at, Event::Tick(i))));
        let timeouts = self
            .vms
            .iter()
            .flat_map(|vm| vm.calls_due(target))
            .map(|(at, id)| (at, Event::Timeout(id)));
        ticks
            .chain(timeouts)
            .filter(|(at, _)| *at <= target)
            .min_by_key(|(at, event)| (*at, event.order()))
    }

    /// Every unanswered HTTP call, across VMs, in VM order then token order.
    pub fn pending_http_calls(&self) -> Vec<HttpCall> {
        self.vms
            .iter()
            .flat_map(|vm| vm.pending_http_calls())
            .collect()
    }

    /// Every HTTP call ever dispatched, across VMs.
    pub fn dispatched_http_calls(&self) -> Vec<HttpCall> {
        self.vms
            .iter()
            .flat_map(|vm| vm.dispatched_http_calls().iter().cloned())
            .collect()
    }

    /// Answers a call with a response.
    pub fn respond(&mut self, id: CallId, response: Response) -> Result<()> {
        self.answer(id, CallAnswer::Response(response))
    }

    /// Answers a call (a response or a reset).
    pub fn answer(&mut self, id: CallId, answer: CallAnswer) -> Result<()> {
        let vm = self
            .vms
            .get_mut(id.vm)
            .ok_or_else(|| HostError::Usage(format!("no VM {}", id.vm)))?;
        vm.answer_http_call(id.token, answer)?;
        self.deliver_queue_events()
    }

    /// Answers every pending call to `cluster` with `response`; returns how many were answered.
    pub fn respond_all(&mut self, cluster: &str, response: &Response) -> Result<usize> {
        let ids: Vec<CallId> = self
            .pending_http_calls()
            .into_iter()
            .filter(|c| c.cluster == cluster)
            .map(|c| c.id)
            .collect();
        for id in &ids {
            self.respond(*id, response.clone())?;
        }
        Ok(ids.len())
    }

    /// A metric's value by the name the guest defined (counter/gauge value, histogram count).
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.shared.metrics.get(name).map(|m| m.value())
    }

    pub fn metric_value(&self, name: &str) -> Option<MetricValue> {
        self.shared.metrics.get(name)
    }

    pub fn metrics(&self) -> BTreeMap<String, MetricValue> {
        self.shared.metrics.all()
    }

    /// Every VM's log lines, in the order they were logged.
    pub fn logs(&self) -> Vec<LogEntry> {
        let mut all: Vec<LogEntry> = self
            .vms
            .iter()
            .flat_map(|vm| vm.logs().iter().cloned())
            .collect();
        all.sort_by_key(|e| e.seq);
        all
    }

    /// Log lines at `level` or above that contain `text`.
    pub fn logs_containing(&self, level: LogLevel, text: &str) -> Vec<LogEntry> {
        self.logs()
            .into_iter()
            .filter(|e| e.level >= level && e.message.contains(text))
            .collect()
    }

    /// A shared-data entry (value, CAS) as the guest would read it.
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.shared.data.get(&self.options.vm_id, key)
    }

    pub fn shared_data_keys(&self) -> Vec<String> {
        self.shared.data.keys(&self.options.vm_id)
    }

    /// Writes shared data from outside (as another plugin in the same VM id could).
    pub fn set_shared_data(&self, key: &str, value: &[u8]) -> Result<()> {
        self.shared
            .data
            .set(&self.options.vm_id, key, value, 0)
            .map_err(|s| HostError::Usage(format!("cannot set shared data {key}: {s:?}")))
    }

    /// Messages waiting in a shared queue.
    pub fn queue_len(&self, name: &str) -> Option<usize> {
        self.shared.queues.len(&self.options.vm_id, name)
    }

    /// Delivers `proxy_on_queue_ready` for messages enqueued since last time (done after every
    /// request, tick and answer; call it after driving a VM directly).
    pub fn deliver_queue_events(&mut self) -> Result<()> {
        for _ in 0..MAX_QUEUE_ROUNDS {
            let ready = self.shared.queues.take_ready();
            if ready.is_empty() {
                return Ok(());
            }
            for (vm, context, queue) in ready {
                if let Some(vm) = self.vms.get_mut(vm) {
                    vm.queue_ready(context, queue)?;
                }
            }
        }
        Err(HostError::Usage(
            "shared queue notifications did not settle (queue ping-pong?)".to_owned(),
        ))
    }
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Tick(usize),
    Timeout(CallId),
}

impl Event {
    /// Ties at the same instant: ticks in VM order, then timeouts.
    fn order(&self) -> (u8, usize, u32) {
        match self {
            Event::Tick(vm) => (0, *vm, 0),
            Event::Timeout(id) => (1, id.vm, id.token),
        }
    }
}
