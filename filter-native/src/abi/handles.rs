//! Safe handles over Envoy's objects: every callback this module makes into Envoy, each `unsafe`
//! block with its reason.

use super::*;
use crate::glue;
use crate::log::Level;
use std::ptr::{null, null_mut};

pub fn log(level: Level, message: &str) {
    // SAFETY: the buffer points into `message`, alive for the call; Envoy copies it.
    unsafe { envoy_dynamic_module_callback_log(level as u32, Buffer::of(message.as_bytes())) }
}

pub(super) fn validation_mode() -> bool {
    // SAFETY: no arguments; called on the main thread (from the config hook), as required.
    unsafe { envoy_dynamic_module_callback_is_validation_mode() }
}

/// Envoy's `DynamicModuleHttpFilterConfig`. Envoy keeps it alive until
/// `envoy_dynamic_module_on_http_filter_config_destroy`, which outlives every filter and callout of
/// the configuration.
#[derive(Clone, Copy)]
pub struct ConfigHandle(pub(super) *mut c_void);

// SAFETY: the pointer is only handed back to Envoy: counters (atomic in Envoy), callouts and
// schedulers from the main thread (the config hooks run there), and scheduler commits that Envoy
// documents as callable from any thread.
unsafe impl Send for ConfigHandle {}
// SAFETY: as for `Send`; the handle has no state of its own.
unsafe impl Sync for ConfigHandle {}

impl ConfigHandle {
    /// Defines a counter; its Envoy id, or `None` (logged) when Envoy refuses.
    pub fn define_counter(&self, name: &str) -> Option<usize> {
        let mut id = 0usize;
        // SAFETY: `self.0` is the live config pointer (we are inside its `config_new` hook); the
        // name buffer is alive for the call; no labels (null, 0); `id` is a valid out pointer.
        let result = unsafe {
            envoy_dynamic_module_callback_http_filter_config_define_counter(
                self.0,
                Buffer::of(name.as_bytes()),
                null_mut(),
                0,
                &mut id,
            )
        };
        (result == METRICS_SUCCESS).then_some(id)
    }

    pub fn increment_counter(&self, id: usize, value: u64) {
        // SAFETY: live config pointer (see the type); no labels, as defined.
        unsafe {
            envoy_dynamic_module_callback_http_filter_config_increment_counter(
                self.0,
                id,
                null_mut(),
                0,
                value,
            );
        }
    }

    /// An HTTP call to `cluster` from the configuration (main thread); its id, or `None`.
    pub fn callout(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Option<u64> {
        // SAFETY: live config pointer, called on the main thread (from a config hook), the one
        // thread Envoy allows configuration callouts on.
        unsafe {
            start_callout(
                envoy_dynamic_module_callback_http_filter_config_http_callout,
                self.0,
                (cluster, headers, body, timeout_ms),
            )
        }
    }

    pub(super) fn scheduler(&self) -> Scheduler {
        // SAFETY: live config pointer, on the main thread (config_new).
        Scheduler(unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_new(self.0) })
    }
}

/// Posts events to the configuration on Envoy's main thread, from any thread.
pub struct Scheduler(*mut c_void);

// SAFETY: Envoy documents the scheduler as the way to reach the main thread "from any thread
// including the ones managed by the module"; commit is the only call made off the main thread.
unsafe impl Send for Scheduler {}
// SAFETY: as for `Send`.
unsafe impl Sync for Scheduler {}

impl Scheduler {
    pub fn commit(&self, event_id: u64) {
        if self.0.is_null() {
            return;
        }
        // SAFETY: a scheduler Envoy created and that is deleted only in `drop`, after the ticker
        // thread (the only other user) has been joined.
        unsafe {
            envoy_dynamic_module_callback_http_filter_config_scheduler_commit(self.0, event_id)
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by `scheduler_new`, deleted exactly once here.
            unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.0) }
        }
    }
}

/// Posts an event to one stream's filter on its worker thread, from any thread. Envoy's scheduler
/// holds the filter weakly: an event committed after the stream ended is dropped by Envoy.
pub struct StreamScheduler(*mut c_void);

// SAFETY: Envoy documents the filter scheduler's commit as callable from any thread; the pointer
// is otherwise only deleted, once, in `drop`.
unsafe impl Send for StreamScheduler {}
// SAFETY: as for `Send`.
unsafe impl Sync for StreamScheduler {}

impl StreamScheduler {
    pub fn commit(&self, event_id: u64) {
        if self.0.is_null() {
            return;
        }
        // SAFETY: a scheduler Envoy created and that is deleted only in `drop`; commit on a
        // scheduler whose stream ended is a no-op in Envoy (weak reference to the filter).
        unsafe { envoy_dynamic_module_callback_http_filter_scheduler_commit(self.0, event_id) }
    }
}

impl Drop for StreamScheduler {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by `scheduler_new`, deleted exactly once here.
            unsafe { envoy_dynamic_module_callback_http_filter_scheduler_delete(self.0) }
        }
    }
}

/// Envoy's `DynamicModuleHttpFilter` for one stream, valid during a hook of that stream.
pub struct FilterHandle(pub(super) *mut c_void);

impl FilterHandle {
    /// A scheduler that wakes this stream (its `on_scheduled` hook) from any thread.
    pub fn scheduler(&self) -> StreamScheduler {
        // SAFETY: live filter pointer, inside one of its hooks on its worker thread, as Envoy
        // requires for `scheduler_new`.
        StreamScheduler(unsafe { envoy_dynamic_module_callback_http_filter_scheduler_new(self.0) })
    }

    /// Runs `f` over the request headers (names and values as Envoy holds them; a value that is
    /// not UTF-8 reads with `?` for its non-ASCII bytes). `&mut self` keeps every setter out of
    /// `f`, so Envoy's buffers stay valid while `f` reads them.
    pub fn with_request_headers<R>(&mut self, f: impl FnOnce(&[(&str, &str)]) -> R) -> R {
        // SAFETY: live filter pointer (inside one of its hooks).
        let count =
            unsafe { envoy_dynamic_module_callback_http_get_headers_size(self.0, REQUEST_HEADER) };
        let mut raw = vec![
            Header {
                key_ptr: null(),
                key_length: 0,
                value_ptr: null(),
                value_length: 0,
            };
            count
        ];
        // SAFETY: `raw` has room for the `count` headers Envoy just reported on this thread.
        let ok = unsafe {
            envoy_dynamic_module_callback_http_get_headers(self.0, REQUEST_HEADER, raw.as_mut_ptr())
        };
        if !ok {
            raw.clear();
        }
        let bytes = |h: &Header| {
            // SAFETY: Envoy's header map owns these bytes and keeps them until the hook ends or a
            // setter runs; neither happens before `f` returns (`&mut self` is held), and nothing
            // made from them outlives this function.
            unsafe {
                (
                    slice(h.key_ptr, h.key_length),
                    slice(h.value_ptr, h.value_length),
                )
            }
        };
        // Every header is UTF-8 (the common case): borrowed as they are, one allocation.
        let borrowed: Option<Vec<(&str, &str)>> = raw
            .iter()
            .map(|h| {
                let (key, value) = bytes(h);
                Some((
                    std::str::from_utf8(key).ok()?,
                    std::str::from_utf8(value).ok()?,
                ))
            })
            .collect();
        if let Some(pairs) = borrowed {
            return f(&pairs);
        }
        let texts: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> = raw
            .iter()
            .map(|h| {
                let (key, value) = bytes(h);
                (glue::header_text(key), glue::header_text(value))
            })
            .collect();
        let pairs: Vec<(&str, &str)> = texts.iter().map(|(k, v)| (&**k, &**v)).collect();
        f(&pairs)
    }

    /// The request body so far, inside the request-body hook: what Envoy buffered before this
    /// event, then this event's bytes (just this event's when they are the buffered body being
    /// handed over again).
    pub fn request_body(&mut self) -> Vec<u8> {
        // SAFETY: live filter pointer, inside its request-body hook.
        let replayed =
            unsafe { envoy_dynamic_module_callback_http_received_buffered_request_body(self.0) };
        let mut body = Vec::new();
        if !replayed {
            self.append_body(BUFFERED_REQUEST_BODY, &mut body);
        }
        self.append_body(RECEIVED_REQUEST_BODY, &mut body);
        body
    }

    fn append_body(&mut self, body_type: u32, out: &mut Vec<u8>) {
        // SAFETY: live filter pointer; Envoy 1.40 takes (filter, body type) and returns a count
        // (checked against the binary: it writes through no third argument).
        let count =
            unsafe { envoy_dynamic_module_callback_http_get_body_chunks_size(self.0, body_type) };
        if count == 0 {
            return;
        }
        let mut chunks = vec![Buffer::NULL; count];
        // SAFETY: `chunks` has room for the `count` buffers Envoy just reported on this thread.
        let ok = unsafe {
            envoy_dynamic_module_callback_http_get_body_chunks(
                self.0,
                body_type,
                chunks.as_mut_ptr(),
            )
        };
        if !ok {
            return;
        }
        for chunk in &chunks {
            // SAFETY: each buffer points to bytes Envoy owns until the hook ends; copied now.
            out.extend_from_slice(unsafe { slice(chunk.ptr, chunk.length) });
        }
    }

    /// Lets the request go on upstream after a hook stopped it (Envoy 1.40: takes the filter
    /// only, returns nothing).
    pub fn continue_decoding(&mut self) {
        // SAFETY: live filter pointer, inside one of its hooks (a callout's completion).
        unsafe { envoy_dynamic_module_callback_http_filter_continue_decoding(self.0) }
    }

    pub fn set_request_header(&mut self, name: &str, value: Option<&str>) -> bool {
        let value = value.map_or(Buffer::NULL, |v| Buffer::of(v.as_bytes()));
        // SAFETY: live filter pointer; buffers alive for the call (Envoy copies them); a null
        // value removes the header, as the ABI documents.
        unsafe {
            envoy_dynamic_module_callback_http_set_header(
                self.0,
                REQUEST_HEADER,
                Buffer::of(name.as_bytes()),
                value,
            )
        }
    }

    /// Appends a request header (beside any of the same name: the caller removed those).
    pub fn add_request_header(&mut self, name: &str, value: &str) -> bool {
        // SAFETY: live filter pointer; buffers alive for the call (Envoy copies them). Same
        // signature as `set_header` (abi.h of Envoy 1.40: filter, header type, key, value).
        unsafe {
            envoy_dynamic_module_callback_http_add_header(
                self.0,
                REQUEST_HEADER,
                Buffer::of(name.as_bytes()),
                Buffer::of(value.as_bytes()),
            )
        }
    }

    pub fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        let mut raw = raw_headers(headers);
        let details = b"oauth2_gateway";
        // SAFETY: live filter pointer; the header array, body and details outlive the call.
        unsafe {
            envoy_dynamic_module_callback_http_send_response(
                self.0,
                status,
                raw.as_mut_ptr(),
                raw.len(),
                Buffer::of(body),
                Buffer::of(details),
            )
        }
    }

    pub fn callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout_ms: u64,
    ) -> Option<u64> {
        // SAFETY: live filter pointer (inside one of its hooks, on its worker thread).
        unsafe {
            start_callout(
                envoy_dynamic_module_callback_http_filter_http_callout,
                self.0,
                (cluster, headers, body, timeout_ms),
            )
        }
    }

    pub fn increment_counter(&mut self, id: usize, value: u64) {
        // SAFETY: live filter pointer; counter defined on this filter's config; no labels.
        unsafe {
            envoy_dynamic_module_callback_http_filter_increment_counter(
                self.0,
                id,
                null_mut(),
                0,
                value,
            );
        }
    }
}

/// Envoy's `http_callout` callbacks (of a filter and of a configuration) share this signature.
type CalloutFn =
    unsafe extern "C" fn(*mut c_void, *mut u64, Buffer, *mut Header, usize, Buffer, u64) -> u32;

/// Header pairs as the ABI's array of (pointer, length) views; the pairs must outlive its use.
fn raw_headers(headers: &[(&str, &str)]) -> Vec<Header> {
    headers
        .iter()
        .map(|(k, v)| Header::of(k, v.as_bytes()))
        .collect()
}

/// Starts an HTTP call through `f` on `owner`; the call's id, or `None` when Envoy refused it.
///
/// # Safety
/// `owner` is the live object `f` expects (a filter inside its hook, or a configuration on the
/// main thread).
unsafe fn start_callout(
    f: CalloutFn,
    owner: *mut c_void,
    (cluster, headers, body, timeout_ms): (&str, &[(&str, &str)], &[u8], u64),
) -> Option<u64> {
    let mut raw = raw_headers(headers);
    let mut id = 0u64;
    // SAFETY: `owner` is live (this function's contract); every buffer (cluster, the header
    // array and what it points to, body) outlives the call, and Envoy copies them into its
    // request; `id` is a valid out pointer.
    let result = unsafe {
        f(
            owner,
            &mut id,
            Buffer::of(cluster.as_bytes()),
            raw.as_mut_ptr(),
            raw.len(),
            Buffer::of(body),
            timeout_ms,
        )
    };
    (result == CALLOUT_INIT_SUCCESS).then_some(id)
}

/// A callout's answer as Envoy hands it over: status (when there is a response) and body.
pub(super) fn callout_answer(
    result: u32,
    headers: *const Header,
    headers_size: usize,
    chunks: *const Buffer,
    chunks_size: usize,
) -> (Option<u32>, Vec<u8>) {
    if result != CALLOUT_RESULT_SUCCESS || headers.is_null() {
        return (None, Vec::new());
    }
    // SAFETY: Envoy passes `headers_size` headers and `chunks_size` body chunks, valid until the
    // hook returns; they are copied out before that.
    let headers = unsafe { std::slice::from_raw_parts(headers, headers_size) };
    let status = headers.iter().find_map(|h| {
        // SAFETY: as above, each key and value points to bytes Envoy owns for the hook.
        let key = unsafe { slice(h.key_ptr, h.key_length) };
        (key == b":status").then(|| {
            // SAFETY: as above.
            let value = unsafe { slice(h.value_ptr, h.value_length) };
            std::str::from_utf8(value).ok()?.parse().ok()
        })?
    });
    let mut body = Vec::new();
    if !chunks.is_null() {
        // SAFETY: as above.
        for chunk in unsafe { std::slice::from_raw_parts(chunks, chunks_size) } {
            // SAFETY: as above.
            body.extend_from_slice(unsafe { slice(chunk.ptr, chunk.length) });
        }
    }
    (status, body)
}

/// # Safety
/// `ptr` is null or points to `len` readable bytes.
pub(super) unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller's promise.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}
