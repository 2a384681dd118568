//! Raw access, for probing the ABI with hand-written guests: calling any export with raw values,
//! and reading and writing guest memory (bounds-checked).

use super::Vm;
use crate::error::{HostError, Result};
use wasmtime::{Extern, Val};

impl Vm {
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
}
