//! Logging, time, timers, properties, effective context, foreign functions, `proxy_done`.

use super::memory::{Ctx, HostResult, copy_out, finish, read, read_string, write_u32, write_u64};
use super::{LogLevel, Status};
use crate::logs::LogSource;
use crate::properties;
use crate::state::{HostState, Tick};
use std::time::Duration;
use wasmtime::{Caller, Linker};

pub(super) fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_log", proxy_log)?;
    linker.func_wrap("env", "proxy_get_log_level", proxy_get_log_level)?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        proxy_get_current_time_nanoseconds,
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        proxy_set_tick_period_milliseconds,
    )?;
    linker.func_wrap("env", "proxy_get_property", proxy_get_property)?;
    linker.func_wrap("env", "proxy_set_property", proxy_set_property)?;
    linker.func_wrap("env", "proxy_get_status", proxy_get_status)?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        proxy_set_effective_context,
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        proxy_call_foreign_function,
    )?;
    linker.func_wrap("env", "proxy_done", proxy_done)?;
    Ok(())
}

fn proxy_log(
    mut caller: Caller<'_, HostState>,
    level: i32,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<i32> {
    finish(log(&mut caller, level, ptr, len))
}

fn log(caller: Ctx<'_, '_>, level: i32, ptr: i32, len: i32) -> HostResult {
    let level = LogLevel::from_raw(level).ok_or(Status::BadArgument)?;
    let message = read_string(caller, ptr, len)?;
    let state = caller.data_mut();
    let at = state.shared.clock.now();
    state
        .logs
        .push(&state.name, level, LogSource::Guest, message, at);
    Ok(())
}

fn proxy_get_log_level(mut caller: Caller<'_, HostState>, ret: i32) -> wasmtime::Result<i32> {
    let level = caller.data().plugin.log_level as u32;
    finish(write_u32(&mut caller, ret, level))
}

fn proxy_get_current_time_nanoseconds(
    mut caller: Caller<'_, HostState>,
    ret: i32,
) -> wasmtime::Result<i32> {
    let now = caller.data().shared.clock.unix_nanos();
    finish(write_u64(&mut caller, ret, now))
}

fn proxy_set_tick_period_milliseconds(
    mut caller: Caller<'_, HostState>,
    period: i32,
) -> wasmtime::Result<i32> {
    let state = caller.data_mut();
    let period = Duration::from_millis(u64::from(super::memory::unsigned(period)));
    // Envoy keeps one timer per root context; a zero period disables it.
    state.tick = if period.is_zero() {
        None
    } else {
        let now = state.shared.clock.monotonic_nanos();
        let period_nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        Some(Tick {
            period,
            next_at: now.saturating_add(period_nanos),
        })
    };
    Ok(Status::Ok.code())
}

fn proxy_get_property(
    mut caller: Caller<'_, HostState>,
    path_ptr: i32,
    path_len: i32,
    ret_ptr: i32,
    ret_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let path = properties::split(&read(&mut caller, path_ptr, path_len)?);
        let value = properties::get(caller.data(), &path)?;
        copy_out(&mut caller, &value, ret_ptr, ret_len)
    })())
}

fn proxy_set_property(
    mut caller: Caller<'_, HostState>,
    path_ptr: i32,
    path_len: i32,
    value_ptr: i32,
    value_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let path = properties::split(&read(&mut caller, path_ptr, path_len)?);
        let value = read(&mut caller, value_ptr, value_len)?;
        let state = caller.data_mut();
        // Envoy stores properties in the stream's filter state: there must be a stream.
        if state.active_stream().is_none() {
            return Err(Status::NotFound.into());
        }
        state.set_properties.insert(path.join("."), value);
        Ok(())
    })())
}

fn proxy_get_status(
    mut caller: Caller<'_, HostState>,
    code_ptr: i32,
    msg_ptr: i32,
    msg_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let (code, message) = caller.data().status.clone();
        write_u32(&mut caller, code_ptr, code)?;
        copy_out(&mut caller, message.as_bytes(), msg_ptr, msg_len)
    })())
}

fn proxy_set_effective_context(
    mut caller: Caller<'_, HostState>,
    context_id: i32,
) -> wasmtime::Result<i32> {
    let state = caller.data_mut();
    let id = super::memory::unsigned(context_id);
    if id != state.contexts.root && !state.streams.contains_key(&id) {
        return Ok(Status::BadArgument.code());
    }
    state.contexts.effective = id;
    Ok(Status::Ok.code())
}

fn proxy_call_foreign_function(
    mut caller: Caller<'_, HostState>,
    name_ptr: i32,
    name_len: i32,
    args_ptr: i32,
    args_len: i32,
    ret_ptr: i32,
    ret_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let name = read_string(&mut caller, name_ptr, name_len)?;
        let arguments = read(&mut caller, args_ptr, args_len)?;
        let function = caller.data().foreign.get(&name).ok_or(Status::NotFound)?;
        let result = function(&arguments)?;
        if ret_ptr == 0 && ret_len == 0 {
            return Ok(());
        }
        copy_out(&mut caller, &result, ret_ptr, ret_len)
    })())
}

fn proxy_done(mut caller: Caller<'_, HostState>) -> wasmtime::Result<i32> {
    let state = caller.data_mut();
    if state.contexts.active() == state.contexts.root {
        state.done_called = true;
        Ok(Status::Ok.code())
    } else {
        Ok(Status::NotFound.code())
    }
}
