//! Entering the guest: every callback runs with fresh fuel in its context; fuel is accounted,
//! stdio collected, and a trap (or running out of fuel) poisons the VM as Envoy marks it failed.

use super::Vm;
use crate::abi::LogLevel;
use crate::error::{HostError, Result};
use crate::logs::LogSource;
use crate::state::HostState;
use wasmtime::{Store, TypedFunc, WasmParams, WasmResults};

impl Vm {
    /// Calls into the guest with fresh fuel, in `context`. A trap poisons the VM, like Envoy
    /// marks a VM failed.
    pub(super) fn call<P: WasmParams, R: WasmResults>(
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
    pub(super) fn run<T>(
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
}
