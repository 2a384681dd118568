//! The event hooks Envoy resolves by name (`envoy_dynamic_module_on_*`): each turns its pointers
//! into the safe handles and runs the glue inside [`crate::boundary::guard`].

use super::handles::{callout_answer, slice, validation_mode};
use super::*;
use crate::boundary;
use crate::glue::{self, ConfigState, FilterState};
use crate::log::Level;
use std::ptr::null;

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
    end_of_stream: bool,
) -> u32 {
    // SAFETY: a live filter, hooks of one stream run one at a time.
    let state = unsafe { filter(filter_ptr) };
    let mut handle = FilterHandle(filter_envoy);
    match boundary::guard("request", || {
        state.on_request_headers(&mut handle, end_of_stream)
    }) {
        Ok(glue::Next::Continue) => HEADERS_CONTINUE,
        Ok(glue::Next::Stop) => HEADERS_STOP_ITERATION,
        Ok(glue::Next::StopAndBuffer) => HEADERS_STOP_ALL_AND_BUFFER,
        // The body hook still runs for each chunk: it collects the back-channel logout's body.
        Ok(glue::Next::CollectBody) => HEADERS_STOP_ITERATION,
        Err(_) => {
            glue::fail_closed(&mut FilterHandle(filter_envoy));
            HEADERS_STOP_ITERATION
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    filter_envoy: *mut c_void,
    filter_ptr: *const c_void,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: a live filter.
    let state = unsafe { filter(filter_ptr) };
    let mut handle = FilterHandle(filter_envoy);
    // While a logout runs (or a back-channel logout's body arrives) the request must not go
    // upstream.
    match boundary::guard("request body", || {
        state.on_request_body(&mut handle, end_of_stream)
    }) {
        Ok(true) => BODY_STOP_AND_BUFFER,
        Ok(false) => BODY_CONTINUE,
        Err(_) => {
            glue::fail_closed(&mut FilterHandle(filter_envoy));
            BODY_STOP_AND_BUFFER
        }
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
    let (status, body) = callout_answer(result, headers, headers_size, chunks, chunks_size);
    let mut handle = FilterHandle(filter_envoy);
    if boundary::guard("logout answer", || {
        state.on_callout_done(&mut handle, callout_id, status, &body)
    })
    .is_err()
    {
        glue::fail_closed(&mut FilterHandle(filter_envoy));
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    filter_envoy: *mut c_void,
    filter_ptr: *const c_void,
    _event_id: u64,
) {
    // SAFETY: a live filter (Envoy drops events of a stream that has ended).
    let state = unsafe { filter(filter_ptr) };
    let mut handle = FilterHandle(filter_envoy);
    if boundary::guard("introspection wake-up", || state.on_scheduled(&mut handle)).is_err() {
        glue::fail_closed(&mut FilterHandle(filter_envoy));
    }
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
