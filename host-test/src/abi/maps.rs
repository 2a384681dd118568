//! Header maps. Follows Envoy's `Context`: reading a map that is not available now gives an empty
//! list (`get_header_map_pairs`) or `BadArgument` (`get_header_map_value`); changing one gives
//! `BadArgument`; names are lower-cased; a lookup returns the first value.

use super::memory::{Ctx, HostResult, copy_out, finish, read, read_string, write_u32};
use super::{LogLevel, MapType, Status, pairs};
use crate::http::Headers;
use crate::state::HostState;
use wasmtime::{Caller, Linker};

pub(super) fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        proxy_get_header_map_pairs,
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        proxy_set_header_map_pairs,
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        proxy_get_header_map_value,
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        proxy_add_header_map_value,
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        proxy_replace_header_map_value,
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        proxy_remove_header_map_value,
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        proxy_get_header_map_size,
    )?;
    Ok(())
}

fn map_type(raw: i32) -> Result<MapType, Status> {
    MapType::from_raw(raw).ok_or(Status::BadArgument)
}

/// A copy of the map if it is readable now.
fn readable(state: &mut HostState, map: MapType) -> Option<Headers> {
    match map {
        MapType::HttpCallResponseHeaders => state.call_response.as_ref().map(|r| r.headers.clone()),
        MapType::HttpCallResponseTrailers => {
            state.call_response.as_ref().map(|r| r.trailers.clone())
        }
        _ => state.active_stream().and_then(|s| s.map(map)).cloned(),
    }
}

/// Applies `change` to the map if it is writable now.
fn modify(state: &mut HostState, map: MapType, change: impl FnOnce(&mut Headers)) -> HostResult {
    let headers = state
        .active_stream()
        .and_then(|s| s.map_mut(map))
        .ok_or(Status::BadArgument)?;
    change(headers);
    Ok(())
}

fn proxy_get_header_map_pairs(
    mut caller: Caller<'_, HostState>,
    map: i32,
    ret_ptr: i32,
    ret_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let map = map_type(map)?;
        let headers = readable(caller.data_mut(), map).unwrap_or_default();
        let bytes = if headers.is_empty() {
            Vec::new()
        } else {
            pairs::encode(headers.as_pairs())
        };
        copy_out(&mut caller, &bytes, ret_ptr, ret_len)
    })())
}

fn proxy_set_header_map_pairs(
    mut caller: Caller<'_, HostState>,
    map: i32,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let map = map_type(map)?;
        let bytes = read(&mut caller, ptr, len)?;
        let limits = caller.data().limits.clone();
        let decoded = match pairs::decode(&bytes, &limits) {
            Some(decoded) => decoded,
            None => {
                // Envoy (proxy-wasm-cpp-host's toPairs) reads a malformed map as empty.
                caller.data_mut().note(
                    LogLevel::Warn,
                    "proxy_set_header_map_pairs: malformed or oversized map, treated as empty"
                        .to_owned(),
                );
                Vec::new()
            }
        };
        modify(caller.data_mut(), map, |headers| {
            *headers = decoded
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect();
        })
    })())
}

fn proxy_get_header_map_value(
    mut caller: Caller<'_, HostState>,
    map: i32,
    key_ptr: i32,
    key_len: i32,
    ret_ptr: i32,
    ret_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let map = map_type(map)?;
        let key = read_string(&mut caller, key_ptr, key_len)?;
        let headers = readable(caller.data_mut(), map).ok_or(Status::BadArgument)?;
        let value = headers.get(&key).ok_or(Status::NotFound)?.to_owned();
        copy_out(&mut caller, value.as_bytes(), ret_ptr, ret_len)
    })())
}

fn key_value(
    caller: Ctx<'_, '_>,
    key_ptr: i32,
    key_len: i32,
    value_ptr: i32,
    value_len: i32,
) -> HostResult<(String, String)> {
    let key = read_string(caller, key_ptr, key_len)?;
    let value = read_string(caller, value_ptr, value_len)?;
    Ok((key, value))
}

fn proxy_add_header_map_value(
    mut caller: Caller<'_, HostState>,
    map: i32,
    key_ptr: i32,
    key_len: i32,
    value_ptr: i32,
    value_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let map = map_type(map)?;
        let (key, value) = key_value(&mut caller, key_ptr, key_len, value_ptr, value_len)?;
        modify(caller.data_mut(), map, |h| h.add(key, value))
    })())
}

fn proxy_replace_header_map_value(
    mut caller: Caller<'_, HostState>,
    map: i32,
    key_ptr: i32,
    key_len: i32,
    value_ptr: i32,
    value_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let map = map_type(map)?;
        let (key, value) = key_value(&mut caller, key_ptr, key_len, value_ptr, value_len)?;
        modify(caller.data_mut(), map, |h| h.replace(key, value))
    })())
}

fn proxy_remove_header_map_value(
    mut caller: Caller<'_, HostState>,
    map: i32,
    key_ptr: i32,
    key_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let map = map_type(map)?;
        let key = read_string(&mut caller, key_ptr, key_len)?;
        modify(caller.data_mut(), map, |h| h.remove(&key))
    })())
}

fn proxy_get_header_map_size(
    mut caller: Caller<'_, HostState>,
    map: i32,
    ret: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let map = map_type(map)?;
        let headers = caller
            .data_mut()
            .active_stream()
            .and_then(|s| s.map(map).cloned())
            .ok_or(Status::BadArgument)?;
        let size = u32::try_from(headers.byte_size()).unwrap_or(u32::MAX);
        write_u32(&mut caller, ret, size)
    })())
}
