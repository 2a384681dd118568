//! One proxy-wasm VM: a wasmtime `Store` + instance of the module, with its root context, as
//! Envoy runs one per thread. Drives the module's callbacks in Envoy's order and turns what the
//! filter asked for (continue, local reply, reset) into outcomes.

use crate::abi::{ACTION_CONTINUE, LogLevel, Status};
use crate::error::{HostError, Result};
use crate::http::{Headers, LocalReply, Outcome, Reply, Request, StreamId, Upstream};
use crate::http_calls::{CallAnswer, CallId, CallResponse, HttpCall};
use crate::logs::{LogEntry, LogSource};
use crate::state::HostState;
use crate::stream::{Phase, Stream};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use wasmtime::{Extern, Instance, Store, TypedFunc, Val, WasmParams, WasmResults};

/// Finished streams kept for `Vm::outcome` lookups.
const FINISHED_KEPT: usize = 1024;

/// `proxy_on_http_call_response(context, token, headers, body size, trailers)`.
type OnHttpCallResponse = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// The module's callbacks; absent ones are skipped, as Envoy skips them.
#[derive(Clone)]
struct Exports {
    on_context_create: Option<TypedFunc<(i32, i32), ()>>,
    on_vm_start: Option<TypedFunc<(i32, i32), i32>>,
    on_configure: Option<TypedFunc<(i32, i32), i32>>,
    on_tick: Option<TypedFunc<i32, ()>>,
    on_queue_ready: Option<TypedFunc<(i32, i32), ()>>,
    on_request_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_response_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_response_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_http_call_response: Option<OnHttpCallResponse>,
    on_done: Option<TypedFunc<i32, i32>>,
    on_log: Option<TypedFunc<i32, ()>>,
    on_delete: Option<TypedFunc<i32, ()>>,
}

fn export<P: WasmParams, R: WasmResults>(
    store: &mut Store<HostState>,
    instance: &Instance,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(func) => func.typed::<P, R>(&*store).map(Some).map_err(|e| {
            HostError::BadModule(format!("export {name} has an unexpected signature: {e}"))
        }),
    }
}

impl Exports {
    fn resolve(store: &mut Store<HostState>, instance: &Instance) -> Result<Self> {
        Ok(Exports {
            on_context_create: export(store, instance, "proxy_on_context_create")?,
            on_vm_start: export(store, instance, "proxy_on_vm_start")?,
            on_configure: export(store, instance, "proxy_on_configure")?,
            on_tick: export(store, instance, "proxy_on_tick")?,
            on_queue_ready: export(store, instance, "proxy_on_queue_ready")?,
            on_request_headers: export(store, instance, "proxy_on_request_headers")?,
            on_request_body: export(store, instance, "proxy_on_request_body")?,
            on_response_headers: export(store, instance, "proxy_on_response_headers")?,
            on_response_body: export(store, instance, "proxy_on_response_body")?,
            on_http_call_response: export(store, instance, "proxy_on_http_call_response")?,
            on_done: export(store, instance, "proxy_on_done")?,
            on_log: export(store, instance, "proxy_on_log")?,
            on_delete: export(store, instance, "proxy_on_delete")?,
        })
    }
}

/// What happened when the VM started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartReport {
    /// `proxy_on_vm_start` returned true.
    pub vm_started: bool,
    /// `proxy_on_configure` returned true (Envoy refuses the plugin otherwise).
    pub configured: bool,
}

/// Fuel (≈ wasm instructions) the guest spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FuelReport {
    /// The last top-level call into the guest.
    pub last_call: u64,
    /// Everything since the VM was created.
    pub total: u64,
}

pub struct Vm {
    store: Store<HostState>,
    instance: Instance,
    exports: Exports,
    started: StartReport,
    failed: Option<String>,
    fuel: FuelReport,
    finished: BTreeMap<u32, (Outcome, u64)>,
    finished_order: VecDeque<u32>,
}

impl Vm {
    pub(crate) fn new(mut store: Store<HostState>, instance: Instance) -> Result<Self> {
        let exports = Exports::resolve(&mut store, &instance)?;
        let abi = ["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"]
            .iter()
            .any(|name| instance.get_func(&mut store, name).is_some());
        if !abi {
            return Err(HostError::BadModule(
                "it exports no proxy_abi_version_0_2_1 (or 0_2_0) function".to_owned(),
            ));
        }
        let mut vm = Vm {
            store,
            instance,
            exports,
            started: StartReport::default(),
            failed: None,
            fuel: FuelReport::default(),
            finished: BTreeMap::new(),
            finished_order: VecDeque::new(),
        };
        // A WASI reactor initialises its runtime in `_initialize`; Envoy calls it first.
        let init = match instance.get_func(&mut vm.store, "_initialize") {
            Some(f) => Some(f),
            None => instance.get_func(&mut vm.store, "_start"),
        };
        if let Some(init) = init {
            let init = init.typed::<(), ()>(&vm.store).map_err(|e| {
                HostError::BadModule(format!("_initialize has an unexpected signature: {e}"))
            })?;
            vm.call("_initialize", Some(init), (), 0)?;
        }
        Ok(vm)
    }

    /// Creates the root context, then runs `proxy_on_vm_start` and `proxy_on_configure`.
    pub(crate) fn start(&mut self) -> Result<StartReport> {
        let root = self.next_context_id();
        self.store.data_mut().contexts.root = root;
        let root_i = signed(root);
        self.call(
            "proxy_on_context_create",
            self.exports.on_context_create.clone(),
            (root_i, 0),
            root,
        )?;
        let vm_config = len_i32(self.store.data().plugin.vm_configuration.len());
        let vm_started = self
            .call(
                "proxy_on_vm_start",
                self.exports.on_vm_start.clone(),
                (root_i, vm_config),
                root,
            )?
            .is_none_or(|r| r != 0);
        self.started.vm_started = vm_started;
        if vm_started {
            let config = len_i32(self.store.data().plugin.configuration.len());
            self.store.data_mut().configuring = true;
            let result = self.call(
                "proxy_on_configure",
                self.exports.on_configure.clone(),
                (root_i, config),
                root,
            );
            self.store.data_mut().configuring = false;
            self.started.configured = result?.is_none_or(|r| r != 0);
        }
        Ok(self.started)
    }

    fn next_context_id(&mut self) -> u32 {
        let contexts = &mut self.store.data_mut().contexts;
        contexts.next_id += 1;
        contexts.next_id
    }

    /// Calls into the guest with fresh fuel, in `context`. A trap poisons the VM, like Envoy
    /// marks a VM failed.
    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        callback: &str,
        func: Option<TypedFunc<P, R>>,
        params: P,
        context: u32,
    ) -> Result<Option<R>> {
        let Some(func) = func else {
            return Ok(None);
        };
        self.run(callback, context, |store| func.call(store, params))
            .map(Some)
    }

    /// Runs `f` (a call into the guest) with fresh fuel, in `context`; accounts fuel, collects
    /// stdio, and turns a trap into an error that poisons the VM.
    fn run<T>(
        &mut self,
        callback: &str,
        context: u32,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T> {
        if let Some(why) = &self.failed {
            return Err(HostError::VmFailed(why.clone()));
        }
        let fuel = self.store.data().limits.fuel_per_call;
        self.store.set_fuel(fuel)?;
        let logs_before = self.store.data().logs.entries.len();
        {
            let contexts = &mut self.store.data_mut().contexts;
            contexts.current = context;
            contexts.effective = 0;
        }
        let result = f(&mut self.store);
        let used = fuel.saturating_sub(self.store.get_fuel().unwrap_or(0));
        self.fuel.last_call = used;
        self.fuel.total = self.fuel.total.saturating_add(used);
        let state = self.store.data_mut();
        if let Some(stream) = state.streams.get_mut(&context) {
            stream.fuel = stream.fuel.saturating_add(used);
        }
        state.contexts.current = 0;
        state.contexts.effective = 0;
        state.collect_stdio();
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                let guest_said = self.guest_said_since(logs_before);
                let error = match e.downcast_ref::<wasmtime::Trap>() {
                    Some(wasmtime::Trap::OutOfFuel) => HostError::OutOfFuel {
                        callback: callback.to_owned(),
                        fuel,
                        guest_said,
                    },
                    _ => HostError::Trap {
                        callback: callback.to_owned(),
                        trap: format!("{e:?}"),
                        guest_said,
                    },
                };
                self.failed = Some(error.to_string());
                let at = self.store.data().shared.clock.now();
                let state = self.store.data_mut();
                let name = state.name.clone();
                state.logs.push(
                    &name,
                    LogLevel::Critical,
                    LogSource::Host,
                    format!("VM failed: {error}"),
                    at,
                );
                Err(error)
            }
        }
    }

    /// The guest's last error-level message logged since entry `from` (its panic message).
    fn guest_said_since(&self, from: usize) -> Option<String> {
        self.store
            .data()
            .logs
            .entries
            .get(from..)?
            .iter()
            .rev()
            .find(|e| {
                e.level >= LogLevel::Error
                    && matches!(e.source, LogSource::Guest | LogSource::Stderr)
            })
            .map(|e| e.message.clone())
    }

    // ---- public API -----------------------------------------------------------------------

    /// The VM's name: `main`, `worker-0`, …
    pub fn name(&self) -> &str {
        &self.store.data().name
    }

    /// The VM's index in its Envoy (0: main thread).
    pub fn index(&self) -> usize {
        self.store.data().index
    }

    pub fn start_report(&self) -> StartReport {
        self.started
    }

    /// The error that made the VM fail, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub fn fuel(&self) -> FuelReport {
        self.fuel
    }

    /// The root context's tick period, if the filter set one.
    pub fn tick_period(&self) -> Option<Duration> {
        self.store.data().tick.map(|t| t.period)
    }

    /// Monotonic nanoseconds of the next tick, if any.
    pub(crate) fn next_tick_at(&self) -> Option<u64> {
        self.store.data().tick.map(|t| t.next_at)
    }

    /// Everything this VM logged.
    pub fn logs(&self) -> &[LogEntry] {
        &self.store.data().logs.entries
    }

    /// Hostcalls the guest used that the harness does not implement, with call counts.
    pub fn unimplemented_calls(&self) -> BTreeMap<&'static str, u64> {
        self.store.data().unimplemented_calls.clone()
    }

    /// Whether the root context called `proxy_done`.
    pub fn done_called(&self) -> bool {
        self.store.data().done_called
    }

    /// Fires the root context's tick now (whether or not it is due), then re-arms the timer.
    pub fn tick(&mut self) -> Result<()> {
        if self.store.data().tick.is_none() {
            return Ok(());
        }
        let root = self.store.data().contexts.root;
        self.call(
            "proxy_on_tick",
            self.exports.on_tick.clone(),
            signed(root),
            root,
        )?;
        let state = self.store.data_mut();
        let now = state.shared.clock.monotonic_nanos();
        if let Some(tick) = &mut state.tick {
            let period = u64::try_from(tick.period.as_nanos()).unwrap_or(u64::MAX);
            tick.next_at = now.saturating_add(period);
        }
        self.drive_pending_streams()
    }

    /// Delivers `proxy_on_queue_ready`.
    pub(crate) fn queue_ready(&mut self, context: u32, queue: u32) -> Result<()> {
        self.call(
            "proxy_on_queue_ready",
            self.exports.on_queue_ready.clone(),
            (signed(context), signed(queue)),
            context,
        )?;
        self.drive_pending_streams()
    }

    /// Calls not answered yet, oldest first.
    pub fn pending_http_calls(&self) -> Vec<HttpCall> {
        self.store
            .data()
            .http_calls
            .pending
            .values()
            .cloned()
            .collect()
    }

    /// Every call this VM dispatched, answered or not, oldest first.
    pub fn dispatched_http_calls(&self) -> &[HttpCall] {
        &self.store.data().http_calls.dispatched
    }

    /// Answers call `token` and runs `proxy_on_http_call_response`.
    pub fn answer_http_call(&mut self, token: u32, answer: CallAnswer) -> Result<()> {
        let call = self
            .store
            .data_mut()
            .http_calls
            .pending
            .remove(&token)
            .ok_or_else(|| {
                HostError::Usage(format!("{}: no pending HTTP call {token}", self.name()))
            })?;
        let (headers, body, trailers) = match answer {
            CallAnswer::Response(response) => {
                let headers = response.header_map();
                let counts = (headers.len(), response.body.len(), response.trailers.len());
                self.store.data_mut().call_response = Some(CallResponse {
                    headers,
                    body: response.body,
                    trailers: response.trailers,
                });
                counts
            }
            CallAnswer::Reset => {
                self.store.data_mut().status = (Status::BrokenConnection as u32, "reset".into());
                (0, 0, 0)
            }
        };
        let result = self.call(
            "proxy_on_http_call_response",
            self.exports.on_http_call_response.clone(),
            (
                signed(call.context_id),
                signed(token),
                len_i32(headers),
                len_i32(body),
                len_i32(trailers),
            ),
            call.context_id,
        );
        let state = self.store.data_mut();
        state.call_response = None;
        state.status = (0, String::new());
        result?;
        self.drive_pending_streams()
    }

    /// Answers call `token` with a response.
    pub fn respond_http_call(&mut self, token: u32, response: crate::Response) -> Result<()> {
        self.answer_http_call(token, CallAnswer::Response(response))
    }

    /// The call ids of pending calls whose deadline is at or before `mono_nanos`.
    pub(crate) fn calls_due(&self, mono_nanos: u64) -> Vec<(u64, CallId)> {
        self.store
            .data()
            .http_calls
            .pending
            .values()
            .filter_map(|c| c.deadline_nanos.map(|d| (d, c.id)))
            .filter(|(d, _)| *d <= mono_nanos)
            .collect()
    }

    // ---- raw access, for probing the ABI with hand-written guests ---------------------------

    /// The root context's id.
    pub fn root_context(&self) -> u32 {
        self.store.data().contexts.root
    }

    /// Calls export `name` with raw wasm values, as if in `context` (e.g. [`Vm::root_context`]
    /// or a paused stream's id), then acts on what the guest asked for (local replies,
    /// continues). Traps and fuel exhaustion are reported as for any callback.
    pub fn call_export(&mut self, name: &str, context: u32, params: &[Val]) -> Result<Vec<Val>> {
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .ok_or_else(|| HostError::Usage(format!("the module exports no function {name}")))?;
        let arity = func.ty(&self.store).results().len();
        let mut results = vec![Val::I32(0); arity];
        self.run(name, context, |store| {
            func.call(store, params, &mut results)
        })?;
        self.drive_pending_streams()?;
        Ok(results)
    }

    /// Copies `bytes` into memory the guest allocates (with its `proxy_on_memory_allocate`);
    /// returns the address.
    pub fn write_guest(&mut self, bytes: &[u8]) -> Result<u32> {
        let size = u32::try_from(bytes.len())
            .map_err(|_| HostError::Usage("more than 4 GiB for a wasm32 guest".to_owned()))?;
        let results = self.call_export(
            "proxy_on_memory_allocate",
            0,
            &[Val::I32(i32::from_ne_bytes(size.to_ne_bytes()))],
        )?;
        let address = match results.first() {
            Some(Val::I32(a)) => u32::from_ne_bytes(a.to_ne_bytes()),
            _ => return Err(HostError::BadModule("allocator returned no i32".to_owned())),
        };
        let memory = self.memory()?;
        memory
            .write(&mut self.store, address as usize, bytes)
            .map_err(|e| HostError::BadModule(format!("allocator returned {address}: {e}")))?;
        Ok(address)
    }

    /// Reads guest memory (bounds-checked).
    pub fn read_guest(&mut self, address: u32, len: u32) -> Result<Vec<u8>> {
        let memory = self.memory()?;
        let mut out = vec![0; len as usize];
        memory
            .read(&self.store, address as usize, &mut out)
            .map_err(|e| HostError::Usage(format!("read of {len} bytes at {address}: {e}")))?;
        Ok(out)
    }

    fn memory(&mut self) -> Result<wasmtime::Memory> {
        match self.instance.get_export(&mut self.store, "memory") {
            Some(Extern::Memory(memory)) => Ok(memory),
            _ => Err(HostError::BadModule("no exported memory".to_owned())),
        }
    }

    // ---- HTTP streams ---------------------------------------------------------------------

    /// Runs a request through the filter and, if it reaches the upstream, the upstream's answer
    /// back through it. A request the filter pauses comes back as [`Outcome::Paused`]: answer
    /// what it waits for, then ask [`Vm::outcome`].
    pub fn request(&mut self, request: Request) -> Result<Outcome> {
        let id = self.send(request)?;
        Ok(self.outcome(id))
    }

    /// Starts a request and runs it as far as the filter lets it go.
    pub fn send(&mut self, request: Request) -> Result<StreamId> {
        let id = self.next_context_id();
        let root = self.store.data().contexts.root;
        self.store
            .data_mut()
            .streams
            .insert(id, Stream::new(request));
        self.call(
            "proxy_on_context_create",
            self.exports.on_context_create.clone(),
            (signed(id), signed(root)),
            id,
        )?;
        self.drive(id)?;
        Ok(StreamId(id))
    }

    /// Where stream `id` stands now.
    pub fn outcome(&self, id: StreamId) -> Outcome {
        match self.finished.get(&id.0) {
            Some((outcome, _)) => outcome.clone(),
            None => Outcome::Paused(id),
        }
    }

    /// Fuel the guest spent on stream `id` (all its callbacks), once it finished.
    pub fn stream_fuel(&self, id: StreamId) -> Option<u64> {
        self.finished.get(&id.0).map(|(_, fuel)| *fuel)
    }

    /// Streams paused by the filter.
    pub fn paused_streams(&self) -> Vec<StreamId> {
        self.store
            .data()
            .streams
            .iter()
            .filter(|(_, s)| s.outcome.is_none())
            .map(|(id, _)| StreamId(*id))
            .collect()
    }

    /// Drives every stream the filter asked something for during the last callback.
    fn drive_pending_streams(&mut self) -> Result<()> {
        loop {
            let next = self
                .store
                .data()
                .streams
                .iter()
                .find(|(_, s)| s.has_pending_action())
                .map(|(id, _)| *id);
            match next {
                Some(id) => self.drive(id)?,
                None => return Ok(()),
            }
        }
    }

    fn stream(&mut self, id: u32) -> Result<&mut Stream> {
        self.store
            .data_mut()
            .streams
            .get_mut(&id)
            .ok_or_else(|| HostError::Usage(format!("no stream {id}")))
    }

    /// Moves stream `id` through Envoy's phases until it finishes or the filter pauses it.
    fn drive(&mut self, id: u32) -> Result<()> {
        loop {
            let stream = self.stream(id)?;
            if stream.outcome.is_some() {
                return Ok(());
            }
            if stream.reset_requested {
                return self.finish(id, Outcome::Reset);
            }
            if stream.local_reply.is_some() {
                if stream.replying_locally.is_some() {
                    // A second local reply while delivering one: Envoy cannot send it either.
                    stream.local_reply = None;
                    self.store.data_mut().note(
                        LogLevel::Warn,
                        "local reply sent while a local reply was being delivered: ignored"
                            .to_owned(),
                    );
                } else {
                    Self::begin_local_reply(stream);
                }
                continue;
            }
            if stream.paused {
                if !stream.continue_requested {
                    return Ok(());
                }
                stream.paused = false;
                stream.continue_requested = false;
                stream.phase = next_phase(stream);
                continue;
            }
            match stream.phase {
                Phase::Created => stream.phase = Phase::RequestHeaders,
                Phase::RequestHeaders => {
                    let n = len_i32(stream.request_headers.len());
                    let eos = i32::from(stream.request.body.is_none());
                    let f = self.exports.on_request_headers.clone();
                    self.stream_callback(id, "proxy_on_request_headers", f, (signed(id), n, eos))?;
                }
                Phase::RequestBody => {
                    let n = len_i32(stream.request_body.len());
                    let f = self.exports.on_request_body.clone();
                    self.stream_callback(id, "proxy_on_request_body", f, (signed(id), n, 1))?;
                }
                Phase::Upstream => {
                    let body = stream
                        .request
                        .body
                        .as_ref()
                        .map(|_| stream.request_body.clone());
                    stream.forwarded = Some((stream.request_headers.clone(), body));
                    let response = stream.request.upstream_response.clone();
                    stream.response_headers = response.header_map();
                    stream.response_body = response.body;
                    stream.phase = Phase::ResponseHeaders;
                }
                Phase::ResponseHeaders => {
                    let n = len_i32(stream.response_headers.len());
                    let eos = i32::from(stream.response_body.is_empty());
                    let f = self.exports.on_response_headers.clone();
                    self.stream_callback(id, "proxy_on_response_headers", f, (signed(id), n, eos))?;
                }
                Phase::ResponseBody => {
                    let n = len_i32(stream.response_body.len());
                    let f = self.exports.on_response_body.clone();
                    self.stream_callback(id, "proxy_on_response_body", f, (signed(id), n, 1))?;
                }
                Phase::Done => {
                    let outcome = Self::final_outcome(stream);
                    return self.finish(id, outcome);
                }
            }
        }
    }

    /// Runs one stream callback; `Pause` leaves the stream waiting for `proxy_continue_stream`.
    fn stream_callback(
        &mut self,
        id: u32,
        name: &str,
        func: Option<TypedFunc<(i32, i32, i32), i32>>,
        params: (i32, i32, i32),
    ) -> Result<()> {
        self.stream(id)?.continue_requested = false;
        let action = self.call(name, func, params, id)?;
        let stream = self.stream(id)?;
        if stream.local_reply.is_some() || stream.reset_requested {
            // Envoy ignores the callback's verdict once a local reply or reset is on its way.
            return Ok(());
        }
        match action {
            None | Some(ACTION_CONTINUE) => stream.phase = next_phase(stream),
            Some(_) => stream.paused = true,
        }
        Ok(())
    }

    /// Envoy's local reply: `:status`, the filter's headers, content-length and (if missing)
    /// `content-type: text/plain` for a non-empty body; then it passes through the response
    /// callbacks of the same filter.
    fn begin_local_reply(stream: &mut Stream) {
        let Some(reply) = stream.local_reply.take() else {
            return;
        };
        let mut headers = Headers::new();
        headers.add(":status", reply.status.to_string());
        for (k, v) in reply.headers.iter() {
            headers.add(k, v);
        }
        if !reply.body.is_empty() {
            headers.replace("content-length", reply.body.len().to_string());
            if !headers.contains("content-type") {
                headers.add("content-type", "text/plain");
            }
        }
        stream.replying_locally = Some((reply.details, reply.grpc_status));
        stream.response_headers = headers;
        stream.response_body = reply.body;
        stream.paused = false;
        stream.continue_requested = false;
        stream.phase = Phase::ResponseHeaders;
    }

    fn final_outcome(stream: &Stream) -> Outcome {
        let reply = Reply {
            status: stream
                .response_headers
                .get(":status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            headers: stream.response_headers.clone(),
            body: stream.response_body.clone(),
        };
        match (&stream.replying_locally, &stream.forwarded) {
            (Some((details, grpc_status)), _) => Outcome::LocalReply(LocalReply {
                reply,
                details: details.clone(),
                grpc_status: *grpc_status,
            }),
            (None, Some((headers, body))) => Outcome::Continued(Upstream {
                request_headers: headers.clone(),
                request_body: body.clone(),
                reply,
            }),
            (None, None) => Outcome::Reset,
        }
    }

    /// Ends the stream: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`.
    fn finish(&mut self, id: u32, outcome: Outcome) -> Result<()> {
        let stream = self.stream(id)?;
        stream.outcome = Some(outcome.clone());
        stream.phase = Phase::Done;
        let context = signed(id);
        let result = self
            .call("proxy_on_done", self.exports.on_done.clone(), context, id)
            .and_then(|_| self.call("proxy_on_log", self.exports.on_log.clone(), context, id))
            .and_then(|_| {
                self.call(
                    "proxy_on_delete",
                    self.exports.on_delete.clone(),
                    context,
                    id,
                )
            });
        let fuel = self
            .store
            .data_mut()
            .streams
            .remove(&id)
            .map_or(0, |s| s.fuel);
        self.finished.insert(id, (outcome, fuel));
        self.finished_order.push_back(id);
        while self.finished_order.len() > FINISHED_KEPT {
            if let Some(old) = self.finished_order.pop_front() {
                self.finished.remove(&old);
            }
        }
        result.map(|_| ())
    }
}

/// The phase after the current one completes.
fn next_phase(stream: &Stream) -> Phase {
    match stream.phase {
        Phase::Created => Phase::RequestHeaders,
        Phase::RequestHeaders if stream.request.body.is_some() => Phase::RequestBody,
        Phase::RequestHeaders | Phase::RequestBody => Phase::Upstream,
        Phase::Upstream => Phase::ResponseHeaders,
        Phase::ResponseHeaders if !stream.response_body.is_empty() => Phase::ResponseBody,
        Phase::ResponseHeaders | Phase::ResponseBody | Phase::Done => Phase::Done,
    }
}

/// A context id or token as the guest's `i32`.
fn signed(raw: u32) -> i32 {
    i32::from_ne_bytes(raw.to_ne_bytes())
}

fn len_i32(len: usize) -> i32 {
    signed(u32::try_from(len).unwrap_or(u32::MAX))
}
