//! Ties the safe glue (request path, logout, background fetches) to Envoy's handles: one
//! [`ConfigState`] per filter configuration (shared by every worker), one [`FilterState`] per
//! stream.

use crate::abi::{ConfigHandle, FilterHandle, Scheduler, StreamScheduler};
use crate::backchannel;
use crate::background::Background;
use crate::clock::now_ms;
use crate::host::{MainThread, Stream, Wake};
use crate::introspection_flow::{self, Held, IntrospectionCall};
use crate::log::{Level, log};
use crate::logout_flow::LogoutFlow;
use crate::metrics::Counters;
use crate::request;
use crate::shared::Gateway;
use crate::ticker::Poke;
use filter::config::FilterConfig;
use std::sync::{Arc, Mutex, PoisonError};

/// The event that wakes a held stream (its only scheduled event).
const WAKE: u64 = 1;

impl Wake for StreamScheduler {
    fn wake(&self) {
        self.commit(WAKE);
    }
}

/// The request headers, owned (read once more for a refusal's challenge or a new decision).
fn owned_request_headers(handle: &mut FilterHandle) -> Vec<(String, String)> {
    handle.with_request_headers(|h| {
        h.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    })
}

pub use crate::request::{Next, header_text};
pub use crate::ticker::Ticker;

impl Poke for Scheduler {
    fn poke(&self) {
        self.commit(0);
    }
}

/// One filter configuration.
pub struct ConfigState {
    gateway: Arc<Gateway>,
    background: Mutex<Background>,
}

/// Parses and validates the configuration and defines the counters; `None` (with the reason in
/// Envoy's log) refuses it, so Envoy does not start with it.
pub fn configure(
    name: &[u8],
    bytes: &[u8],
    define_counter: impl FnMut(&str) -> Option<usize>,
) -> Option<ConfigState> {
    let config = match FilterConfig::from_json(bytes) {
        Ok(config) => config,
        Err(e) => {
            log(
                Level::Critical,
                &format!(
                    "oauth2-gateway: invalid plugin configuration, refusing to start: {}: {}",
                    e.field, e.message
                ),
            );
            return None;
        }
    };
    let (counters, refused) = Counters::define(define_counter);
    if !refused.is_empty() {
        log(
            Level::Warn,
            &format!("oauth2-gateway: Envoy refused the counters {refused:?}"),
        );
    }
    log(
        Level::Info,
        &format!(
            "oauth2-gateway: configured ({}): {} provider(s), {} rule(s); native module, signatures verified in AWS-LC with keys parsed once",
            String::from_utf8_lossy(name),
            config.providers.len(),
            config.rules.len()
        ),
    );
    let gateway = Arc::new(Gateway::new(config, counters));
    let background = Mutex::new(Background::new(&gateway));
    Some(ConfigState {
        gateway,
        background,
    })
}

struct EnvoyMain<'a> {
    handle: &'a ConfigHandle,
    counters: &'a Counters,
}

impl MainThread for EnvoyMain<'_> {
    fn callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Option<u64> {
        self.handle.callout(cluster, headers, body, timeout_ms)
    }

    fn count(&mut self, name: &str, n: u64) {
        if let Some(id) = self.counters.id(name) {
            self.handle.increment_counter(id, n);
        }
    }
}

struct EnvoyStream<'a> {
    handle: &'a mut FilterHandle,
    counters: &'a Counters,
}

impl Stream for EnvoyStream<'_> {
    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        if !self.handle.set_request_header(name, value) && value.is_some() {
            log(
                Level::Warn,
                &format!("oauth2-gateway: cannot set request header {name}"),
            );
        }
    }

    fn add_request_header(&mut self, name: &str, value: &str) {
        if !self.handle.add_request_header(name, value) {
            log(
                Level::Warn,
                &format!("oauth2-gateway: cannot add request header {name}"),
            );
        }
    }

    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        self.handle.send_response(status, headers, body);
    }

    fn continue_request(&mut self) {
        self.handle.continue_decoding();
    }

    fn callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Option<u64> {
        self.handle.callout(cluster, headers, body, timeout_ms)
    }

    fn count(&mut self, name: &str, n: u64) {
        if let Some(id) = self.counters.id(name) {
            self.handle.increment_counter(id, n);
        }
    }

    fn waker(&mut self) -> Option<Arc<dyn Wake>> {
        Some(Arc::new(self.handle.scheduler()))
    }
}

impl ConfigState {
    /// A tick on the main thread: start the background fetches that are due.
    pub fn tick(&self, handle: &ConfigHandle) {
        let gw = &self.gateway;
        let mut host = EnvoyMain {
            handle,
            counters: &gw.counters,
        };
        self.background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tick(gw, &mut host, now_ms());
    }

    pub fn background_answer(
        &self,
        handle: &ConfigHandle,
        call: u64,
        status: Option<u32>,
        body: &[u8],
    ) {
        let gw = &self.gateway;
        let mut host = EnvoyMain {
            handle,
            counters: &gw.counters,
        };
        self.background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .answer(gw, &mut host, call, status, body, now_ms());
    }

    pub fn new_filter(&self) -> FilterState {
        FilterState {
            gateway: Arc::clone(&self.gateway),
            logout: None,
            backchannel: false,
            hub_call: None,
            introspection: None,
            following: false,
        }
    }
}

/// One stream.
pub struct FilterState {
    gateway: Arc<Gateway>,
    logout: Option<LogoutFlow>,
    /// The body of a back-channel logout request is being collected.
    backchannel: bool,
    /// The callout forwarding a back-channel logout token to the revocation hub.
    hub_call: Option<u64>,
    /// The introspection the held request waits for.
    introspection: Option<IntrospectionCall>,
    /// The held request waits for another request's introspection of its token.
    following: bool,
}

impl Drop for FilterState {
    fn drop(&mut self) {
        // A stream that ends while it asks about a token: whoever follows its call is woken.
        if let Some(pending) = &self.introspection {
            introspection_flow::abandon(&self.gateway, pending);
        }
    }
}

impl FilterState {
    pub fn on_request_headers(&mut self, handle: &mut FilterHandle, end_of_stream: bool) -> Next {
        let now = now_ms();
        let gw = &self.gateway;
        let plan = handle.with_request_headers(|headers| request::plan(gw, headers, now));
        if let request::Plan::Introspect {
            provider, token, ..
        } = &plan
        {
            let (provider, token) = (*provider, token.clone());
            let counters = &gw.counters;
            let mut stream = EnvoyStream { handle, counters };
            let (next, _) = request::execute(gw, &mut stream, plan, now);
            // The request headers are read again for the refusal's challenge, if any.
            let headers = owned_request_headers(stream.handle);
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            return match introspection_flow::start(gw, &mut stream, &pairs, provider, token, now) {
                Some(Held::Asking(call)) => {
                    self.introspection = Some(call);
                    next
                }
                Some(Held::Following) => {
                    self.following = true;
                    next
                }
                None => Next::Stop,
            };
        }
        let mut stream = EnvoyStream {
            handle,
            counters: &gw.counters,
        };
        let (next, flow) = request::execute(gw, &mut stream, plan, now);
        self.logout = flow;
        if next == Next::CollectBody {
            if end_of_stream {
                // No body at all: the receiver refuses it, now.
                if let backchannel::Outcome::Forwarded(call) =
                    backchannel::on_body(gw, &mut stream, &[], now)
                {
                    self.hub_call = Some(call);
                }
                return Next::Stop;
            }
            self.backchannel = true;
        }
        next
    }

    /// A logout is running (or a back-channel logout's body is being collected): the request
    /// must not continue upstream.
    pub fn holds_request(&self) -> bool {
        self.logout.is_some()
            || self.backchannel
            || self.hub_call.is_some()
            || self.introspection.is_some()
            || self.following
    }

    /// Woken by the end of the introspection this request followed.
    pub fn on_scheduled(&mut self, handle: &mut FilterHandle) {
        if !std::mem::take(&mut self.following) {
            return;
        }
        let gw = &self.gateway;
        let headers = owned_request_headers(handle);
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut stream = EnvoyStream {
            handle,
            counters: &gw.counters,
        };
        self.logout = introspection_flow::on_woken(gw, &mut stream, &pairs, now_ms());
    }

    /// Request body bytes arrived. Returns whether the request is still held.
    pub fn on_request_body(&mut self, handle: &mut FilterHandle, end_of_stream: bool) -> bool {
        if !self.backchannel {
            return self.holds_request();
        }
        let gw = &self.gateway;
        let body = handle.request_body();
        let too_large = backchannel::too_large(gw, body.len());
        if too_large.is_none() && !end_of_stream {
            return true;
        }
        self.backchannel = false;
        let mut stream = EnvoyStream {
            handle,
            counters: &gw.counters,
        };
        match too_large {
            Some(answer) => backchannel::answer(&mut stream, &answer),
            None => {
                if let backchannel::Outcome::Forwarded(call) =
                    backchannel::on_body(gw, &mut stream, &body, now_ms())
                {
                    self.hub_call = Some(call);
                }
            }
        }
        true
    }

    pub fn on_callout_done(
        &mut self,
        handle: &mut FilterHandle,
        call: u64,
        status: Option<u32>,
        body: &[u8],
    ) {
        let gw = &self.gateway;
        if let Some(pending) = self.introspection.take_if(|p| p.call == call) {
            let now = now_ms();
            let headers = owned_request_headers(handle);
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut stream = EnvoyStream {
                handle,
                counters: &gw.counters,
            };
            self.logout = introspection_flow::on_answer(
                gw,
                &mut stream,
                &pending,
                (status, body),
                &pairs,
                now,
            );
            return;
        }
        if self.hub_call == Some(call) {
            self.hub_call = None;
            let mut stream = EnvoyStream {
                handle,
                counters: &gw.counters,
            };
            backchannel::on_hub_answer(&mut stream, status, body);
            return;
        }
        let Some(flow) = self.logout.as_mut() else {
            return;
        };
        if let Some(response) = flow.on_answer(gw, call, status, body, now_ms()) {
            self.logout = None;
            let mut stream = EnvoyStream {
                handle,
                counters: &gw.counters,
            };
            request::answer_logout(&mut stream, &response);
        }
    }
}

/// After a caught panic: 503, closed.
pub fn fail_closed(handle: &mut FilterHandle) {
    let counters = Counters::default();
    let mut stream = EnvoyStream {
        handle,
        counters: &counters,
    };
    request::fail_closed(&mut stream);
}
