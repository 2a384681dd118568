//! Envoy 1.40's dynamic-module ABI, the part this module uses, and nothing else that touches a raw
//! pointer. Declared by hand from `source/extensions/dynamic_modules/abi/abi.h` (Envoy 1.40.0;
//! ABI version string "v0.2.0"): the event hooks Envoy resolves by name (`envoy_dynamic_module_on_*`)
//! and the callbacks it exports (`envoy_dynamic_module_callback_*`). Envoy does not check
//! signatures, so each declaration below mirrors the header's exactly (C enums are `int`: `u32`
//! here; `bool` is C's `_Bool`).
//!
//! Every hook turns its pointers into the safe types of this module ([`FilterHandle`],
//! [`ConfigHandle`], [`Headers`]) and runs the safe glue inside [`crate::boundary::guard`], so a
//! panic never unwinds into Envoy.

#![allow(unsafe_code)]
// The hooks must be safe `extern "C"` functions (Envoy calls them by name); the pointers they take
// are Envoy's to vouch for, as the ABI documents, and each use says why it is sound.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

use crate::boundary;
use crate::glue::{self, ConfigState, FilterState};
use crate::log::Level;
use std::ffi::c_void;
use std::ptr::{null, null_mut};

/// The version string Envoy 1.40.0 expects (it logs "Dynamic module ABI version v0.2.0 matched").
static ABI_VERSION: &[u8] = b"v0.2.0\0";

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Buffer {
    ptr: *const u8,
    length: usize,
}

impl Buffer {
    fn of(bytes: &[u8]) -> Buffer {
        Buffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }
    const NULL: Buffer = Buffer {
        ptr: null(),
        length: 0,
    };
}

/// `envoy_dynamic_module_type_{module,envoy}_http_header` (same layout).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Header {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

impl Header {
    fn of(name: &str, value: &[u8]) -> Header {
        Header {
            key_ptr: name.as_ptr(),
            key_length: name.len(),
            value_ptr: value.as_ptr(),
            value_length: value.len(),
        }
    }
}

const REQUEST_HEADER: u32 = 0;
const HEADERS_CONTINUE: u32 = 0;
const HEADERS_STOP_ITERATION: u32 = 1;
const HEADERS_STOP_ALL_AND_BUFFER: u32 = 3;
const BODY_CONTINUE: u32 = 0;
const BODY_STOP_AND_BUFFER: u32 = 1;
const TRAILERS_CONTINUE: u32 = 0;
const TRAILERS_STOP: u32 = 1;
const CALLOUT_INIT_SUCCESS: u32 = 0;
const CALLOUT_RESULT_SUCCESS: u32 = 0;
const METRICS_SUCCESS: u32 = 0;

unsafe extern "C" {
    fn envoy_dynamic_module_callback_log(level: u32, message: Buffer);
    fn envoy_dynamic_module_callback_is_validation_mode() -> bool;
    fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: *mut c_void,
        name: Buffer,
        label_names: *mut Buffer,
        label_names_length: usize,
        counter_id: *mut usize,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: *mut c_void,
        id: usize,
        label_values: *mut Buffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: *mut c_void,
        id: usize,
        label_values: *mut Buffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: *mut c_void,
        header_type: u32,
    ) -> usize;
    fn envoy_dynamic_module_callback_http_get_headers(
        filter: *mut c_void,
        header_type: u32,
        result: *mut Header,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_set_header(
        filter: *mut c_void,
        header_type: u32,
        key: Buffer,
        value: Buffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_send_response(
        filter: *mut c_void,
        status_code: u32,
        headers: *mut Header,
        headers_size: usize,
        body: Buffer,
        details: Buffer,
    );
    fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter: *mut c_void,
        callout_id: *mut u64,
        cluster: Buffer,
        headers: *mut Header,
        headers_size: usize,
        body: Buffer,
        timeout_ms: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: *mut c_void,
        callout_id: *mut u64,
        cluster: Buffer,
        headers: *mut Header,
        headers_size: usize,
        body: Buffer,
        timeout_ms: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: *mut c_void,
    ) -> *mut c_void;
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: *mut c_void,
        event_id: u64,
    );
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler: *mut c_void);
}

// ------------------------------------------------------------------------------------------
// Safe handles
// ------------------------------------------------------------------------------------------

pub fn log(level: Level, message: &str) {
    // SAFETY: the buffer points into `message`, alive for the call; Envoy copies it.
    unsafe { envoy_dynamic_module_callback_log(level as u32, Buffer::of(message.as_bytes())) }
}

fn validation_mode() -> bool {
    // SAFETY: no arguments; called on the main thread (from the config hook), as required.
    unsafe { envoy_dynamic_module_callback_is_validation_mode() }
}

/// Envoy's `DynamicModuleHttpFilterConfig`. Envoy keeps it alive until
/// `envoy_dynamic_module_on_http_filter_config_destroy`, which outlives every filter and callout of
/// the configuration.
#[derive(Clone, Copy)]
pub struct ConfigHandle(*mut c_void);

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
        let mut raw: Vec<Header> = headers
            .iter()
            .map(|(k, v)| Header::of(k, v.as_bytes()))
            .collect();
        let mut id = 0u64;
        // SAFETY: live config pointer, called on the main thread (from a config hook); every
        // buffer (cluster, the header array and what it points to, body) outlives the call, and
        // Envoy copies them into its request; `id` is a valid out pointer.
        let result = unsafe {
            envoy_dynamic_module_callback_http_filter_config_http_callout(
                self.0,
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

    fn scheduler(&self) -> Scheduler {
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

/// Envoy's `DynamicModuleHttpFilter` for one stream, valid during a hook of that stream.
pub struct FilterHandle(*mut c_void);

impl FilterHandle {
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
        let texts: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> = raw
            .iter()
            .map(|h| {
                // SAFETY: Envoy's header map owns these bytes and keeps them until the hook ends
                // or a setter runs; neither happens before `f` returns (`&mut self` is held), and
                // `texts` does not outlive this function.
                let (key, value) = unsafe {
                    (
                        slice(h.key_ptr, h.key_length),
                        slice(h.value_ptr, h.value_length),
                    )
                };
                (glue::header_text(key), glue::header_text(value))
            })
            .collect();
        let pairs: Vec<(&str, &str)> = texts.iter().map(|(k, v)| (&**k, &**v)).collect();
        f(&pairs)
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

    pub fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        let mut raw: Vec<Header> = headers
            .iter()
            .map(|(k, v)| Header::of(k, v.as_bytes()))
            .collect();
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
        let mut raw: Vec<Header> = headers
            .iter()
            .map(|(k, v)| Header::of(k, v.as_bytes()))
            .collect();
        let mut id = 0u64;
        // SAFETY: live filter pointer; every buffer outlives the call (Envoy copies them);
        // `id` is a valid out pointer.
        let result = unsafe {
            envoy_dynamic_module_callback_http_filter_http_callout(
                self.0,
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

/// A callout's answer as Envoy hands it over: status (when there is a response) and body.
fn callout_answer(
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
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller's promise.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

// ------------------------------------------------------------------------------------------
// Event hooks
// ------------------------------------------------------------------------------------------

/// The configuration object this module hands Envoy: the shared gateway plus the ticker.
struct Config {
    state: ConfigState,
    handle: ConfigHandle,
    ticker: Option<glue::Ticker<Scheduler>>,
}

/// # Safety
/// `ptr` came from `envoy_dynamic_module_on_http_filter_config_new` and is not destroyed yet.
unsafe fn config<'a>(ptr: *const c_void) -> &'a Config {
    // SAFETY: the caller's promise; Envoy keeps the config alive while it has filters or hooks.
    unsafe { &*ptr.cast::<Config>() }
}

/// # Safety
/// `ptr` came from `envoy_dynamic_module_on_http_filter_new` and is not destroyed yet; Envoy runs
/// one stream's hooks one at a time on its worker thread, so the `&mut` is unique.
unsafe fn filter<'a>(ptr: *const c_void) -> &'a mut FilterState {
    // SAFETY: the caller's promise.
    unsafe { &mut *ptr.cast_mut().cast::<FilterState>() }
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    ABI_VERSION.as_ptr()
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy: *mut c_void,
    name: Buffer,
    config: Buffer,
) -> *const c_void {
    let handle = ConfigHandle(config_envoy);
    // SAFETY: Envoy owns the name and config bytes for the duration of this hook.
    let (name, bytes) = unsafe {
        (
            slice(name.ptr, name.length),
            slice(config.ptr, config.length),
        )
    };
    let created = boundary::guard("configuration", || {
        let state = glue::configure(name, bytes, |n| handle.define_counter(n))?;
        let ticker = (!validation_mode()).then(|| glue::Ticker::start(handle.scheduler()));
        Some(Box::new(Config {
            state,
            handle,
            ticker,
        }))
    });
    match created.ok().flatten() {
        Some(config) => Box::into_raw(config).cast_const().cast(),
        None => null(),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config_ptr: *const c_void) {
    if config_ptr.is_null() {
        return;
    }
    // SAFETY: created by `Box::into_raw` in `config_new`, destroyed exactly once here; Envoy has
    // destroyed every filter of it already.
    let mut config = unsafe { Box::from_raw(config_ptr.cast_mut().cast::<Config>()) };
    // Joins the ticker thread before its scheduler is deleted.
    let _ = boundary::guard("configuration teardown", move || {
        if let Some(ticker) = config.ticker.take() {
            ticker.stop();
        }
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _config_envoy: *mut c_void,
    config_ptr: *const c_void,
    _event_id: u64,
) {
    // SAFETY: a live config (Envoy runs scheduled events only for live configs).
    let config = unsafe { config(config_ptr) };
    let _ = boundary::guard("tick", || config.state.tick(&config.handle));
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _config_envoy: *mut c_void,
    config_ptr: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const Header,
    headers_size: usize,
    chunks: *const Buffer,
    chunks_size: usize,
) {
    // SAFETY: a live config (its callouts end before it is destroyed).
    let config = unsafe { config(config_ptr) };
    let (status, body) = callout_answer(result, headers, headers_size, chunks, chunks_size);
    let _ = boundary::guard("background call", || {
        config
            .state
            .background_answer(&config.handle, callout_id, status, &body)
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config_ptr: *const c_void,
    _filter_envoy: *mut c_void,
) -> *const c_void {
    // SAFETY: a live config.
    let config = unsafe { config(config_ptr) };
    let state = Box::new(config.state.new_filter());
    Box::into_raw(state).cast_const().cast()
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter_envoy: *mut c_void,
    filter_ptr: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    // SAFETY: a live filter, hooks of one stream run one at a time.
    let state = unsafe { filter(filter_ptr) };
    let mut handle = FilterHandle(filter_envoy);
    match boundary::guard("request", || state.on_request_headers(&mut handle)) {
        Ok(glue::Next::Continue) => HEADERS_CONTINUE,
        Ok(glue::Next::Stop) => HEADERS_STOP_ITERATION,
        Ok(glue::Next::StopAndBuffer) => HEADERS_STOP_ALL_AND_BUFFER,
        Err(_) => {
            glue::fail_closed(&mut FilterHandle(filter_envoy));
            HEADERS_STOP_ITERATION
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _filter_envoy: *mut c_void,
    filter_ptr: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    // SAFETY: a live filter.
    let state = unsafe { filter(filter_ptr) };
    // While a logout runs the request must not go upstream.
    if state.holds_request() {
        BODY_STOP_AND_BUFFER
    } else {
        BODY_CONTINUE
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _filter_envoy: *mut c_void,
    filter_ptr: *const c_void,
) -> u32 {
    // SAFETY: a live filter.
    let state = unsafe { filter(filter_ptr) };
    if state.holds_request() {
        TRAILERS_STOP
    } else {
        TRAILERS_CONTINUE
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    HEADERS_CONTINUE
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    BODY_CONTINUE
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
) -> u32 {
    TRAILERS_CONTINUE
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter_ptr: *const c_void) {
    if filter_ptr.is_null() {
        return;
    }
    // SAFETY: created by `Box::into_raw` in `filter_new`, destroyed exactly once here.
    let state = unsafe { Box::from_raw(filter_ptr.cast_mut().cast::<FilterState>()) };
    let _ = boundary::guard("stream teardown", move || drop(state));
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    filter_envoy: *mut c_void,
    filter_ptr: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const Header,
    headers_size: usize,
    chunks: *const Buffer,
    chunks_size: usize,
) {
    // SAFETY: a live filter (Envoy cancels a stream's callouts before destroying it).
    let state = unsafe { filter(filter_ptr) };
    let (status, _) = callout_answer(result, headers, headers_size, chunks, chunks_size);
    let mut handle = FilterHandle(filter_envoy);
    if boundary::guard("logout answer", || {
        state.on_callout_done(&mut handle, callout_id, status)
    })
    .is_err()
    {
        glue::fail_closed(&mut FilterHandle(filter_envoy));
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
    _event_id: u64,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _name: Buffer,
    _config: Buffer,
) -> *const c_void {
    // Per-route configuration is not supported: the rules live in the filter configuration.
    log(
        Level::Error,
        "oauth2-gateway: per-route configuration is not supported; use the filter's rules",
    );
    null()
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    _config: *const c_void,
) {
}

// Hooks Envoy resolves for every HTTP filter module; this module starts no streamable callouts and
// needs no watermark or local-reply notice, so they do nothing.

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
    _stream_id: u64,
    _headers: *const Header,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
    _stream_id: u64,
    _data: *const Buffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
    _stream_id: u64,
    _trailers: *const Header,
    _trailers_size: usize,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
    _stream_id: u64,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
    _stream_id: u64,
    _reason: u32,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
    _config_envoy: *mut c_void,
    _config_ptr: *const c_void,
    _stream_id: u64,
    _headers: *const Header,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
    _config_envoy: *mut c_void,
    _config_ptr: *const c_void,
    _stream_id: u64,
    _data: *const Buffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
    _config_envoy: *mut c_void,
    _config_ptr: *const c_void,
    _stream_id: u64,
    _trailers: *const Header,
    _trailers_size: usize,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(
    _config_envoy: *mut c_void,
    _config_ptr: *const c_void,
    _stream_id: u64,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
    _config_envoy: *mut c_void,
    _config_ptr: *const c_void,
    _stream_id: u64,
    _reason: u32,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
) {
}

/// `Continue`: our own local replies (and Envoy's) are sent as they are.
#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _filter_envoy: *mut c_void,
    _filter_ptr: *const c_void,
    _response_code: u32,
    _details: Buffer,
    _reset_imminent: bool,
) -> u32 {
    0
}
