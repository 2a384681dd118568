//! Guest memory, treated as hostile: every read and write is bounds-checked, reads are capped,
//! and data handed to the guest goes into memory the guest allocated itself.

use super::Status;
use crate::state::HostState;
use wasmtime::{Caller, Extern, Memory};

/// Why a hostcall did not succeed: a status for the guest, or a trap that ends the call.
pub(crate) enum Fail {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for Fail {
    fn from(status: Status) -> Self {
        Fail::Status(status)
    }
}

impl From<wasmtime::Error> for Fail {
    fn from(e: wasmtime::Error) -> Self {
        Fail::Trap(e)
    }
}

pub(crate) type HostResult<T = ()> = Result<T, Fail>;

/// Turns a hostcall's result into what the guest receives.
pub(crate) fn finish(result: HostResult) -> wasmtime::Result<i32> {
    match result {
        Ok(()) => Ok(Status::Ok.code()),
        Err(Fail::Status(status)) => Ok(status.code()),
        Err(Fail::Trap(e)) => Err(e),
    }
}

pub(crate) type Ctx<'a, 'b> = &'a mut Caller<'b, HostState>;

fn memory(caller: Ctx<'_, '_>) -> HostResult<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(Fail::Trap(wasmtime::Error::msg(
            "the module exports no linear memory named `memory`",
        ))),
    }
}

/// A wasm32 pointer or size: the bits of an `i32`, read unsigned.
pub(crate) fn unsigned(raw: i32) -> u32 {
    u32::from_ne_bytes(raw.to_ne_bytes())
}

fn signed(raw: u32) -> i32 {
    i32::from_ne_bytes(raw.to_ne_bytes())
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read(caller: Ctx<'_, '_>, ptr: i32, len: i32) -> HostResult<Vec<u8>> {
    let len = unsigned(len) as usize;
    if len == 0 {
        return Ok(Vec::new());
    }
    if len > caller.data().limits.max_read_bytes {
        let max = caller.data().limits.max_read_bytes;
        caller.data_mut().note(
            super::LogLevel::Warn,
            format!("guest passed {len} bytes to a hostcall; the harness reads at most {max}"),
        );
        return Err(Status::BadArgument.into());
    }
    let memory = memory(caller)?;
    let start = unsigned(ptr) as usize;
    let data = memory.data(&*caller);
    start
        .checked_add(len)
        .and_then(|end| data.get(start..end))
        .map(<[u8]>::to_vec)
        .ok_or(Fail::Status(Status::InvalidMemoryAccess))
}

/// Reads text; invalid UTF-8 is replaced (Envoy keeps bytes, but the SDK deals in strings).
pub(crate) fn read_string(caller: Ctx<'_, '_>, ptr: i32, len: i32) -> HostResult<String> {
    let bytes = read(caller, ptr, len)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn write(caller: Ctx<'_, '_>, ptr: u32, bytes: &[u8]) -> HostResult {
    let memory = memory(caller)?;
    memory
        .write(&mut *caller, ptr as usize, bytes)
        .map_err(|_| Fail::Status(Status::InvalidMemoryAccess))
}

pub(crate) fn write_u32(caller: Ctx<'_, '_>, ptr: i32, value: u32) -> HostResult {
    write(caller, unsigned(ptr), &value.to_le_bytes())
}

pub(crate) fn write_u64(caller: Ctx<'_, '_>, ptr: i32, value: u64) -> HostResult {
    write(caller, unsigned(ptr), &value.to_le_bytes())
}

/// Hands `bytes` to the guest: allocates with the guest's `proxy_on_memory_allocate` (or
/// `malloc`), copies, and stores the address and size at `ptr_ptr` and `size_ptr`. Empty data is
/// a null pointer and zero size, as in Envoy.
pub(crate) fn copy_out(
    caller: Ctx<'_, '_>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    if bytes.is_empty() {
        write_u32(caller, ptr_ptr, 0)?;
        return write_u32(caller, size_ptr, 0);
    }
    let size = u32::try_from(bytes.len()).map_err(|_| Fail::Status(Status::BadArgument))?;
    let address = allocate(caller, size)?;
    write(caller, address, bytes)?;
    write_u32(caller, ptr_ptr, address)?;
    write_u32(caller, size_ptr, size)
}

/// Calls the guest's allocator. A zero or out-of-bounds answer is an invalid memory access.
pub(crate) fn allocate(caller: Ctx<'_, '_>, size: u32) -> HostResult<u32> {
    let func = caller
        .get_export("proxy_on_memory_allocate")
        .or_else(|| caller.get_export("malloc"))
        .and_then(Extern::into_func)
        .ok_or_else(|| {
            Fail::Trap(wasmtime::Error::msg(
                "the module exports neither proxy_on_memory_allocate nor malloc",
            ))
        })?;
    let typed = func.typed::<i32, i32>(&*caller)?;
    let address = unsigned(typed.call(&mut *caller, signed(size))?);
    let memory = memory(caller)?;
    let end = u64::from(address) + u64::from(size);
    if address == 0 || end > memory.data_size(&*caller) as u64 {
        return Err(Status::InvalidMemoryAccess.into());
    }
    Ok(address)
}
