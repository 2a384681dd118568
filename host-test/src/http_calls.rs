//! `proxy_http_call`: calls the guest dispatched, waiting for the test to answer them.

use crate::http::{Headers, Response};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Names one HTTP call in a simulated Envoy: the VM that made it and its token there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId {
    /// VM index: 0 is the main thread, 1.. the workers.
    pub vm: usize,
    pub token: u32,
}

/// A call the guest dispatched and nobody has answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub id: CallId,
    /// The VM's name (`main`, `worker-0`, …).
    pub vm_name: String,
    /// Envoy cluster the call targets.
    pub cluster: String,
    /// Request headers, pseudo-headers included.
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
    /// `None`: no timeout (the guest passed 0).
    pub timeout: Option<Duration>,
    pub dispatched_at: SystemTime,
    /// The context that made the call (Envoy answers on the root context).
    pub(crate) context_id: u32,
    /// Monotonic nanoseconds at which the call times out.
    pub(crate) deadline_nanos: Option<u64>,
}

impl HttpCall {
    pub fn method(&self) -> Option<&str> {
        self.headers.get(":method")
    }

    pub fn path(&self) -> Option<&str> {
        self.headers.get(":path")
    }

    pub fn authority(&self) -> Option<&str> {
        self.headers.get(":authority")
    }

    /// When the call times out, if it has a timeout.
    pub fn deadline(&self) -> Option<SystemTime> {
        self.timeout.map(|t| self.dispatched_at + t)
    }
}

/// How the test (or the clock) settles a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAnswer {
    /// The cluster answered (Envoy also turns timeouts and connection failures into responses:
    /// see [`Response::envoy_timeout`] and [`Response::envoy_connect_failure`]).
    Response(Response),
    /// The stream was reset: the guest gets a callback with no headers, no body, and
    /// `proxy_get_status` reports `BrokenConnection`/"reset"; the response maps are unavailable.
    Reset,
}

/// The answer being delivered to the guest, readable through the `HttpCallResponse*` maps and
/// buffer while `proxy_on_http_call_response` runs.
#[derive(Debug, Clone)]
pub(crate) struct CallResponse {
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
}

/// One VM's calls in flight.
#[derive(Debug, Default)]
pub(crate) struct HttpCalls {
    pub pending: BTreeMap<u32, HttpCall>,
    pub next_token: u32,
    /// Every call ever dispatched, answered or not (for assertions on "calls made").
    pub dispatched: Vec<HttpCall>,
}
