//! The module's exported callbacks, resolved once per VM with their proxy-wasm signatures.

use crate::error::{HostError, Result};
use crate::state::HostState;
use wasmtime::{Instance, Store, TypedFunc, WasmParams, WasmResults};

/// `proxy_on_http_call_response(context, token, headers, body size, trailers)`.
type OnHttpCallResponse = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// The module's callbacks; absent ones are skipped, as Envoy skips them.
#[derive(Clone)]
pub(super) struct Exports {
    pub(super) on_context_create: Option<TypedFunc<(i32, i32), ()>>,
    pub(super) on_vm_start: Option<TypedFunc<(i32, i32), i32>>,
    pub(super) on_configure: Option<TypedFunc<(i32, i32), i32>>,
    pub(super) on_tick: Option<TypedFunc<i32, ()>>,
    pub(super) on_queue_ready: Option<TypedFunc<(i32, i32), ()>>,
    pub(super) on_request_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub(super) on_request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub(super) on_response_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub(super) on_response_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub(super) on_http_call_response: Option<OnHttpCallResponse>,
    pub(super) on_done: Option<TypedFunc<i32, i32>>,
    pub(super) on_log: Option<TypedFunc<i32, ()>>,
    pub(super) on_delete: Option<TypedFunc<i32, ()>>,
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
    pub(super) fn resolve(store: &mut Store<HostState>, instance: &Instance) -> Result<Self> {
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
