//! `proxy_define_metric`, `proxy_increment_metric`, `proxy_record_metric`, `proxy_get_metric`.

use super::memory::{finish, read_string, unsigned, write_u32, write_u64};
use super::{MetricType, Status};
use crate::state::HostState;
use wasmtime::{Caller, Linker};

pub(super) fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_define_metric", proxy_define_metric)?;
    linker.func_wrap("env", "proxy_increment_metric", proxy_increment_metric)?;
    linker.func_wrap("env", "proxy_record_metric", proxy_record_metric)?;
    linker.func_wrap("env", "proxy_get_metric", proxy_get_metric)?;
    Ok(())
}

fn proxy_define_metric(
    mut caller: Caller<'_, HostState>,
    kind: i32,
    name_ptr: i32,
    name_len: i32,
    ret: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let kind = MetricType::from_raw(kind).ok_or(Status::BadArgument)?;
        let name = read_string(&mut caller, name_ptr, name_len)?;
        let state = caller.data_mut();
        state.shared.metrics.define(kind, &name)?;
        let id = state.metric_ids.assign(kind, &name)?;
        write_u32(&mut caller, ret, id)
    })())
}

fn name_of(state: &HostState, id: i32) -> Result<String, Status> {
    state
        .metric_ids
        .name(unsigned(id))
        .map(str::to_owned)
        .ok_or(Status::NotFound)
}

fn proxy_increment_metric(
    caller: Caller<'_, HostState>,
    id: i32,
    offset: i64,
) -> wasmtime::Result<i32> {
    finish((|| {
        let state = caller.data();
        let name = name_of(state, id)?;
        state.shared.metrics.increment(&name, offset)?;
        Ok(())
    })())
}

fn proxy_record_metric(
    caller: Caller<'_, HostState>,
    id: i32,
    value: i64,
) -> wasmtime::Result<i32> {
    finish((|| {
        let state = caller.data();
        let name = name_of(state, id)?;
        let value = u64::from_ne_bytes(value.to_ne_bytes());
        state.shared.metrics.record(&name, value)?;
        Ok(())
    })())
}

fn proxy_get_metric(mut caller: Caller<'_, HostState>, id: i32, ret: i32) -> wasmtime::Result<i32> {
    finish((|| {
        let state = caller.data();
        let name = name_of(state, id)?;
        let value = state.shared.metrics.read(&name)?;
        write_u64(&mut caller, ret, value)
    })())
}
