//! Stream control: `proxy_continue_stream`, `proxy_close_stream`, `proxy_send_local_response`.
//! Like Envoy, the harness records the request and acts once the current callback returns.

use super::memory::{finish, read, read_string, unsigned};
use super::{LogLevel, Status, StreamType, pairs};
use crate::http::Headers;
use crate::state::HostState;
use crate::stream::PendingLocalReply;
use wasmtime::{Caller, Linker};

pub(super) fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_continue_stream", proxy_continue_stream)?;
    linker.func_wrap("env", "proxy_close_stream", proxy_close_stream)?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        proxy_send_local_response,
    )?;
    Ok(())
}

fn proxy_continue_stream(mut caller: Caller<'_, HostState>, kind: i32) -> wasmtime::Result<i32> {
    let state = caller.data_mut();
    let status = match StreamType::from_raw(kind) {
        Some(StreamType::HttpRequest | StreamType::HttpResponse) => {
            // Envoy ignores a continue outside an HTTP stream, and returns Ok.
            if let Some(stream) = state.active_stream() {
                stream.continue_requested = true;
            }
            Status::Ok
        }
        Some(StreamType::Downstream) => Status::Ok,
        Some(StreamType::Upstream) => Status::Unimplemented,
        None => Status::BadArgument,
    };
    Ok(status.code())
}

fn proxy_close_stream(mut caller: Caller<'_, HostState>, kind: i32) -> wasmtime::Result<i32> {
    let state = caller.data_mut();
    let status = match StreamType::from_raw(kind) {
        Some(StreamType::HttpRequest | StreamType::HttpResponse) => {
            if let Some(stream) = state.active_stream() {
                stream.reset_requested = true;
            }
            Status::Ok
        }
        Some(StreamType::Downstream | StreamType::Upstream) => Status::Ok,
        None => Status::BadArgument,
    };
    Ok(status.code())
}

#[allow(clippy::too_many_arguments)] // the ABI's shape
fn proxy_send_local_response(
    mut caller: Caller<'_, HostState>,
    status_code: i32,
    details_ptr: i32,
    details_len: i32,
    body_ptr: i32,
    body_len: i32,
    headers_ptr: i32,
    headers_len: i32,
    grpc_status: i32,
) -> wasmtime::Result<i32> {
    finish((|| {
        let details = read_string(&mut caller, details_ptr, details_len)?;
        let body = read(&mut caller, body_ptr, body_len)?;
        let raw_headers = read(&mut caller, headers_ptr, headers_len)?;
        let limits = caller.data().limits.clone();
        let state = caller.data_mut();
        let headers: Headers = match pairs::decode(&raw_headers, &limits) {
            Some(decoded) => decoded
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
            None => {
                if !raw_headers.is_empty() {
                    state.note(
                        LogLevel::Warn,
                        "proxy_send_local_response: malformed header map, sent without headers"
                            .to_owned(),
                    );
                }
                Headers::new()
            }
        };
        let reply = PendingLocalReply {
            status: unsigned(status_code),
            // Envoy replaces whitespace in details with underscores.
            details: details
                .chars()
                .map(|c| if c.is_whitespace() { '_' } else { c })
                .collect(),
            body,
            headers,
            grpc_status,
        };
        match state.active_stream() {
            Some(stream) => stream.local_reply = Some(reply),
            // Envoy silently does nothing outside an HTTP stream.
            None => state.note(
                LogLevel::Warn,
                "proxy_send_local_response outside an HTTP stream: ignored".to_owned(),
            ),
        }
        Ok(())
    })())
}
