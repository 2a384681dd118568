//! The proxy-wasm ABI 0.2.1 hostcalls (`env.proxy_*`), registered on one `Linker` shared by
//! every VM. Each hostcall reads guest memory through [`memory`] only, acts on the `HostState`
//! of the calling store, and returns a [`Status`].

pub(crate) mod memory;
pub(crate) mod pairs;
mod types;

mod buffers;
mod calls;
mod general;
mod maps;
mod metrics;
mod shared;
mod streams;

pub(crate) use types::{ACTION_CONTINUE, BufferType, MapType, StreamType};
pub use types::{LogLevel, MetricType, Status};

use crate::state::HostState;
use wasmtime::Linker;

/// Every hostcall the Rust SDK 0.2.x can import. Modules importing others fail to instantiate.
pub const HOSTCALLS: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_add_header_map_value",
    "proxy_get_header_map_size",
    "proxy_get_buffer_status",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_call_foreign_function",
    "proxy_done",
    "proxy_define_metric",
    "proxy_get_metric",
    "proxy_record_metric",
    "proxy_increment_metric",
];

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    general::register(linker)?;
    buffers::register(linker)?;
    maps::register(linker)?;
    shared::register(linker)?;
    streams::register(linker)?;
    calls::register(linker)?;
    metrics::register(linker)?;
    Ok(())
}
