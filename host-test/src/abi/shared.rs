//! Shared data (with CAS) and shared queues, shared by every VM of the simulated Envoy.

use super::Status;
use super::memory::{copy_out, finish, read, read_string, unsigned, write_u32};
use crate::state::HostState;
use wasmtime::{Caller, Linker};

pub(super) fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_shared_data", proxy_get_shared_data)?;
    linker.func_wrap("env", "proxy_set_shared_data", proxy_set_shared_data)?;
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        proxy_register_shared_queue,
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        proxy_resolve_shared_queue,
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        proxy_dequeue_shared_queue,
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        proxy_enqueue_shared_queue,
    )?;
    Ok(())
}

fn proxy_get_shared_data(
    mut caller: Caller<'_, HostState>,
    key_ptr: i32,
    key_len: i32,
    ret_ptr: i32,
    ret_len: i32,
    cas_ptr: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let key = read_string(&mut caller, key_ptr, key_len)?;
        let state = caller.data();
        let (value, cas) = state
            .shared
            .data
            .get(&state.plugin.vm_id, &key)
            .ok_or(Status::NotFound)?;
        copy_out(&mut caller, &value, ret_ptr, ret_len)?;
        write_u32(&mut caller, cas_ptr, cas)
    })())
}

fn proxy_set_shared_data(
    mut caller: Caller<'_, HostState>,
    key_ptr: i32,
    key_len: i32,
    value_ptr: i32,
    value_len: i32,
    cas: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let key = read_string(&mut caller, key_ptr, key_len)?;
        let value = read(&mut caller, value_ptr, value_len)?;
        let state = caller.data();
        state
            .shared
            .data
            .set(&state.plugin.vm_id, &key, &value, unsigned(cas))?;
        Ok(())
    })())
}

fn proxy_register_shared_queue(
    mut caller: Caller<'_, HostState>,
    name_ptr: i32,
    name_len: i32,
    ret: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let name = read_string(&mut caller, name_ptr, name_len)?;
        let state = caller.data();
        let owner = (state.index, state.contexts.root);
        let id = state
            .shared
            .queues
            .register(&state.plugin.vm_id, &name, owner);
        write_u32(&mut caller, ret, id)
    })())
}

fn proxy_resolve_shared_queue(
    mut caller: Caller<'_, HostState>,
    vm_ptr: i32,
    vm_len: i32,
    name_ptr: i32,
    name_len: i32,
    ret: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let vm_id = read_string(&mut caller, vm_ptr, vm_len)?;
        let name = read_string(&mut caller, name_ptr, name_len)?;
        let id = caller
            .data()
            .shared
            .queues
            .resolve(&vm_id, &name)
            .ok_or(Status::NotFound)?;
        write_u32(&mut caller, ret, id)
    })())
}

fn proxy_dequeue_shared_queue(
    mut caller: Caller<'_, HostState>,
    id: i32,
    ret_ptr: i32,
    ret_len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let message = caller.data().shared.queues.dequeue(unsigned(id))?;
        copy_out(&mut caller, &message, ret_ptr, ret_len)
    })())
}

fn proxy_enqueue_shared_queue(
    mut caller: Caller<'_, HostState>,
    id: i32,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let message = read(&mut caller, ptr, len)?;
        caller.data().shared.queues.enqueue(unsigned(id), message)?;
        Ok(())
    })())
}
