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

use std::ffi::c_void;
use std::ptr::null;

mod handles;
mod hooks;

pub use handles::{ConfigHandle, FilterHandle, Scheduler, StreamScheduler, log};

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
/// `envoy_dynamic_module_type_http_body_type`: the request body of the latest event, and what
/// Envoy buffered before it.
const RECEIVED_REQUEST_BODY: u32 = 0;
const BUFFERED_REQUEST_BODY: u32 = 1;
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
    fn envoy_dynamic_module_callback_http_add_header(
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
    fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: *mut c_void,
        body_type: u32,
    ) -> usize;
    fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: *mut c_void,
        body_type: u32,
        result: *mut Buffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter: *mut c_void,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: *mut c_void);
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
    fn envoy_dynamic_module_callback_http_filter_scheduler_new(filter: *mut c_void) -> *mut c_void;
    fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler: *mut c_void,
        event_id: u64,
    );
    fn envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler: *mut c_void);
}
