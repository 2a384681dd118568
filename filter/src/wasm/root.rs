//! The root context: validates the plugin configuration once (failing closed with the reason in
//! Envoy's log), drives background refreshes on ticks, and creates HTTP contexts.

use super::host::{self, log_at};
use super::http::Http;
use super::jwks_refresh;
use super::worker::Worker;
use crate::config::FilterConfig;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

const TICK: Duration = Duration::from_millis(500);

enum Phase {
    AwaitingConfig,
    Ready(Rc<Worker>),
    Failed,
}

pub struct Root {
    context_id: u32,
    phase: Phase,
    /// JWKS fetches in flight from this thread: callout token → provider index.
    fetches: HashMap<u32, usize>,
}

impl Root {
    pub fn new(context_id: u32) -> Self {
        Root {
            context_id,
            phase: Phase::AwaitingConfig,
            fetches: HashMap::new(),
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Phase::Ready(worker) = &self.phase else {
            return;
        };
        let Some(provider) = self.fetches.remove(&token) else {
            log_at!(
                Warn,
                "oauth2-gateway: answer to an unknown call {token} ignored"
            );
            return;
        };
        let status = host::http_call_status();
        let body = host::http_call_body(body_size);
        jwks_refresh::finish_fetch(worker, provider, status, &body, host::now_ms());
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = host::plugin_configuration().unwrap_or_default();
        let config = FilterConfig::from_json(&bytes);
        match config {
            Ok(config) => {
                log_at!(
                    Info,
                    "oauth2-gateway: configured (context {}): {} provider(s), {} rule(s)",
                    self.context_id,
                    config.providers.len(),
                    config.rules.len()
                );
                let worker = Rc::new(Worker::new(config));
                worker.sync_keys();
                self.phase = Phase::Ready(worker);
                host::set_tick_period(TICK);
                true
            }
            Err(e) => {
                log_at!(
                    Critical,
                    "oauth2-gateway: invalid plugin configuration, refusing to start: {}: {}",
                    e.field,
                    e.message
                );
                self.phase = Phase::Failed;
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Phase::Ready(worker) = &self.phase else {
            return;
        };
        worker.sync_keys();
        // A thread with a fetch in flight does not start another (its lease covers it).
        if self.fetches.is_empty() {
            self.fetches
                .extend(jwks_refresh::start_due_fetches(worker, host::now_ms()));
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let worker = match &self.phase {
            Phase::Ready(worker) => Some(Rc::clone(worker)),
            Phase::AwaitingConfig | Phase::Failed => None,
        };
        Some(Box::new(Http::new(worker)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
