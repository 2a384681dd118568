//! A proxy-wasm HTTP filter that does nothing but let every request through, built like the
//! gateway filter (same SDK, same profile, same wasm-opt). `scripts/bench` runs it as the variant
//! `noop-wasm`: what Envoy's Wasm runtime costs before a filter does any work (the callbacks of
//! each stream crossing into V8, compiling and instantiating a module at start-up, the VMs'
//! memory), so the gateway filter's figures can be read against that floor.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(PassThrough))
    }
}

struct PassThrough;

impl Context for PassThrough {}

impl HttpContext for PassThrough {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
}
