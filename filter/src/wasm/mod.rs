//! The proxy-wasm glue: moves data between Envoy and the pure core, nothing more. Host calls go
//! through [`host`], which never panics (the SDK's `Context` helpers `unwrap` on host failures).

mod admission;
mod backchannel;
mod discovery;
mod host;
mod http;
mod introspection;
mod jwks_refresh;
mod logout_flow;
mod metrics;
mod native_verifier;
mod revocation_feed;
mod root;
mod shared_data;
mod worker;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

// The SDK's entry-point macro expands to `#[no_mangle]` exports, which the workspace's
// `unsafe_code` lint counts as unsafe.
#[allow(unsafe_code)]
mod entry {
    use super::*;

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(LogLevel::Trace);
        proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
            Box::new(root::Root::new(context_id))
        });
    }}
}
