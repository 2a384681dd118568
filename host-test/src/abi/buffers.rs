//! Bodies and configuration buffers (`proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`,
//! `proxy_get_buffer_status`), with Envoy's availability rules: a body only during its callback
//! (or while the filter holds the stream there), the plugin configuration only during
//! `proxy_on_configure`, an HTTP call's body only during `proxy_on_http_call_response`.

use super::memory::{Ctx, HostResult, copy_out, finish, read, unsigned, write_u32};
use super::{BufferType, Status};
use crate::state::HostState;
use wasmtime::{Caller, Linker};

pub(super) fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_buffer_bytes", proxy_get_buffer_bytes)?;
    linker.func_wrap("env", "proxy_set_buffer_bytes", proxy_set_buffer_bytes)?;
    linker.func_wrap("env", "proxy_get_buffer_status", proxy_get_buffer_status)?;
    Ok(())
}

/// A readable copy of the buffer, or `NotFound` when it is not available now.
fn contents(state: &mut HostState, kind: BufferType) -> Result<Vec<u8>, Status> {
    match kind {
        BufferType::HttpRequestBody => state
            .active_stream()
            .and_then(|s| s.request_body_mut())
            .map(|b| b.clone())
            .ok_or(Status::NotFound),
        BufferType::HttpResponseBody => state
            .active_stream()
            .and_then(|s| s.response_body_mut())
            .map(|b| b.clone())
            .ok_or(Status::NotFound),
        BufferType::HttpCallResponseBody => state
            .call_response
            .as_ref()
            .map(|r| r.body.clone())
            .ok_or(Status::NotFound),
        BufferType::VmConfiguration => Ok(state.plugin.vm_configuration.clone()),
        BufferType::PluginConfiguration if state.configuring => {
            Ok(state.plugin.configuration.clone())
        }
        _ => Err(Status::NotFound),
    }
}

fn proxy_get_buffer_bytes(
    mut caller: Caller<'_, HostState>,
    kind: i32,
    start: i32,
    max_size: i32,
    ret_ptr: i32,
    ret_len: i32,
) -> wasmtime::Result<i32> {
    finish(get_bytes(
        &mut caller,
        kind,
        start,
        max_size,
        ret_ptr,
        ret_len,
    ))
}

fn get_bytes(
    caller: Ctx<'_, '_>,
    kind: i32,
    start: i32,
    max_size: i32,
    ret_ptr: i32,
    ret_len: i32,
) -> HostResult {
    let kind = BufferType::from_raw(kind).ok_or(Status::BadArgument)?;
    let buffer = contents(caller.data_mut(), kind)?;
    // Sizes are 32-bit in wasm32: `start + max_size` cannot overflow in 64 bits, and a guest asking
    // for `usize::MAX` bytes just gets the whole buffer (as in Envoy).
    let start = unsigned(start) as usize;
    let end = start
        .saturating_add(unsigned(max_size) as usize)
        .min(buffer.len());
    let slice = buffer.get(start..end).unwrap_or_default();
    copy_out(caller, slice, ret_ptr, ret_len)
}

fn proxy_set_buffer_bytes(
    mut caller: Caller<'_, HostState>,
    kind: i32,
    start: i32,
    size: i32,
    data_ptr: i32,
    data_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let kind = BufferType::from_raw(kind).ok_or(Status::BadArgument)?;
        let data = read(&mut caller, data_ptr, data_len)?;
        let state = caller.data_mut();
        let buffer = match kind {
            BufferType::HttpRequestBody => state.active_stream().and_then(|s| s.request_body_mut()),
            BufferType::HttpResponseBody => {
                state.active_stream().and_then(|s| s.response_body_mut())
            }
            // Configuration and call bodies are read-only.
            BufferType::HttpCallResponseBody
            | BufferType::VmConfiguration
            | BufferType::PluginConfiguration => return Err(Status::BadArgument.into()),
            _ => None,
        };
        let buffer = buffer.ok_or(Status::NotFound)?;
        replace(
            buffer,
            unsigned(start) as usize,
            unsigned(size) as usize,
            &data,
        )?;
        Ok(())
    })())
}

/// Envoy's `Buffer::copyFrom`: at 0, drop `size` bytes then prepend; at or past the end, append;
/// anything else is refused.
fn replace(buffer: &mut Vec<u8>, start: usize, size: usize, data: &[u8]) -> Result<(), Status> {
    if start == 0 {
        let drop = size.min(buffer.len());
        buffer.splice(0..drop, data.iter().copied());
        Ok(())
    } else if start >= buffer.len() {
        buffer.extend_from_slice(data);
        Ok(())
    } else {
        Err(Status::BadArgument)
    }
}

fn proxy_get_buffer_status(
    mut caller: Caller<'_, HostState>,
    kind: i32,
    len_ptr: i32,
    flags_ptr: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let kind = BufferType::from_raw(kind).ok_or(Status::BadArgument)?;
        let buffer = contents(caller.data_mut(), kind)?;
        let len = u32::try_from(buffer.len()).map_err(|_| Status::BadArgument)?;
        write_u32(&mut caller, len_ptr, len)?;
        write_u32(&mut caller, flags_ptr, 0)
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_from_semantics() {
        let mut b = b"hello".to_vec();
        replace(&mut b, 0, 0, b">").unwrap();
        assert_eq!(b, b">hello");
        replace(&mut b, 0, 1, b"").unwrap();
        assert_eq!(b, b"hello");
        replace(&mut b, 0, 100, b"bye").unwrap();
        assert_eq!(b, b"bye");
        replace(&mut b, 3, 0, b"!").unwrap();
        assert_eq!(b, b"bye!");
        assert_eq!(replace(&mut b, 1, 1, b"x"), Err(Status::BadArgument));
    }
}
