//! What the glue needs from Envoy, as traits: the ABI module implements them over Envoy's
//! callbacks, the unit tests over fakes that record what was asked.

use std::sync::Arc;

/// Wakes one held stream from any thread (its filter then decides it again).
pub trait Wake: Send + Sync {
    fn wake(&self);
}

/// One HTTP stream, during one of its hooks (a worker thread).
pub trait Stream {
    /// Sets (`Some`) or removes (`None`) a request header.
    fn set_request_header(&mut self, name: &str, value: Option<&str>);
    /// Adds a request header known to be absent (its inbound copies were removed): Envoy then
    /// appends it without looking for another of that name.
    fn add_request_header(&mut self, name: &str, value: &str) {
        self.set_request_header(name, Some(value));
    }
    /// Answers the client locally.
    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]);
    /// An HTTP call tied to this stream; its id, or `None` when Envoy refused to start it.
    fn callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Option<u64>;
    /// Adds `n` to the counter `oauth2gw.<name>`.
    fn count(&mut self, name: &str, n: u64);
    /// Lets a request held by the filter (a hook that stopped it) go on upstream.
    fn continue_request(&mut self);
    /// What wakes this stream later, from any thread; `None` when the host cannot.
    fn waker(&mut self) -> Option<Arc<dyn Wake>>;
}

/// The filter configuration on Envoy's main thread.
pub trait MainThread {
    fn callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Option<u64>;
    fn count(&mut self, name: &str, n: u64);
}
