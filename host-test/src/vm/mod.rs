//! One proxy-wasm VM: a wasmtime `Store` + instance of the module, with its root context, as
//! Envoy runs one per thread. Drives the module's callbacks in Envoy's order and turns what the
//! filter asked for (continue, local reply, reset) into outcomes.
//!
//! By job: [`exports`] (the module's callbacks), [`guest_call`] (entering the guest: fuel, traps),
//! [`streams`] (HTTP streams through Envoy's phases), [`outgoing_calls`] (answering the filter's
//! HTTP calls), [`guest_access`] (raw calls and memory, for probing the ABI); here the VM's
//! start, its root context's tick and queue callbacks, and what it reports.

mod exports;
mod guest_access;
mod guest_call;
mod outgoing_calls;
mod streams;

use crate::error::{HostError, Result};
use crate::http::Outcome;
use crate::logs::LogEntry;
use crate::state::HostState;
use exports::Exports;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use wasmtime::{Instance, Store};

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
}

/// A context id or token as the guest's `i32`.
fn signed(raw: u32) -> i32 {
    i32::from_ne_bytes(raw.to_ne_bytes())
}

fn len_i32(len: usize) -> i32 {
    signed(u32::try_from(len).unwrap_or(u32::MAX))
}
