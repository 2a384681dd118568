//! `proxy_http_call` (recorded; the test answers it) and the gRPC calls (not implemented: they
//! return `Unimplemented`, which the SDK turns into a panic, so a test notices).

use super::memory::{Ctx, HostResult, finish, read, read_string, write_u32};
use super::{LogLevel, Status, pairs};
use crate::http::Headers;
use crate::http_calls::HttpCall;
use crate::state::HostState;
use std::time::Duration;
use wasmtime::{Caller, Linker};

pub(super) fn register(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_http_call", proxy_http_call)?;
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut caller: Caller<'_, HostState>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> i32 { caller.data_mut().unimplemented("proxy_grpc_call").code() },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut caller: Caller<'_, HostState>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> i32 { caller.data_mut().unimplemented("proxy_grpc_stream").code() },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |mut caller: Caller<'_, HostState>, _: i32, _: i32, _: i32, _: i32| -> i32 {
            caller.data_mut().unimplemented("proxy_grpc_send").code()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        |mut caller: Caller<'_, HostState>, _: i32| -> i32 {
            caller.data_mut().unimplemented("proxy_grpc_cancel").code()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        |mut caller: Caller<'_, HostState>, _: i32| -> i32 {
            caller.data_mut().unimplemented("proxy_grpc_close").code()
        },
    )?;
    Ok(())
}

fn decode_map(caller: Ctx<'_, '_>, bytes: &[u8], what: &str) -> Headers {
    if bytes.is_empty() {
        return Headers::new();
    }
    let limits = caller.data().limits.clone();
    match pairs::decode(bytes, &limits) {
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
            caller.data_mut().note(
                LogLevel::Warn,
                format!("proxy_http_call: malformed {what} map, treated as empty"),
            );
            Headers::new()
        }
    }
}

#[allow(clippy::too_many_arguments)] // the ABI's shape
fn proxy_http_call(
    mut caller: Caller<'_, HostState>,
    cluster_ptr: i32,
    cluster_len: i32,
    headers_ptr: i32,
    headers_len: i32,
    body_ptr: i32,
    body_len: i32,
    trailers_ptr: i32,
    trailers_len: i32,
    timeout_ms: i32,
    token_ptr: i32,
) -> wasmtime::Result<i32> {
    finish((|| -> HostResult {
        let cluster = read_string(&mut caller, cluster_ptr, cluster_len)?;
        let raw_headers = read(&mut caller, headers_ptr, headers_len)?;
        let body = read(&mut caller, body_ptr, body_len)?;
        let raw_trailers = read(&mut caller, trailers_ptr, trailers_len)?;
        let mut headers = decode_map(&mut caller, &raw_headers, "header");
        let trailers = decode_map(&mut caller, &raw_trailers, "trailer");
        // Like Envoy, make sure the token can be written before starting anything.
        write_u32(&mut caller, token_ptr, 0)?;
        let state = caller.data_mut();
        if timeout_ms < 0 {
            return Err(Status::BadArgument.into());
        }
        if let Some(clusters) = &state.plugin.clusters
            && !clusters.contains(&cluster)
        {
            state.note(
                LogLevel::Warn,
                format!("proxy_http_call: unknown cluster {cluster:?} (BadArgument)"),
            );
            return Err(Status::BadArgument.into());
        }
        if [":path", ":method", ":authority"]
            .iter()
            .any(|h| !headers.contains(h))
        {
            state.note(
                LogLevel::Warn,
                "proxy_http_call: :path, :method and :authority are required (BadArgument)"
                    .to_owned(),
            );
            return Err(Status::BadArgument.into());
        }
        if state.http_calls.pending.len() >= state.limits.max_pending_http_calls {
            return Err(Status::InternalFailure.into());
        }
        if !body.is_empty() {
            headers.replace("content-length", body.len().to_string());
        }
        state.http_calls.next_token = state.http_calls.next_token.wrapping_add(1).max(1);
        let token = state.http_calls.next_token;
        let timeout = u64::from(super::memory::unsigned(timeout_ms));
        let call = HttpCall {
            id: crate::http_calls::CallId {
                vm: state.index,
                token,
            },
            vm_name: state.name.clone(),
            cluster,
            headers,
            body,
            trailers,
            timeout: (timeout > 0).then(|| Duration::from_millis(timeout)),
            dispatched_at: state.shared.clock.now(),
            // Envoy makes every call from the root context and answers there.
            context_id: state.contexts.root,
            deadline_nanos: (timeout > 0).then(|| {
                state
                    .shared
                    .clock
                    .monotonic_nanos()
                    .saturating_add(timeout.saturating_mul(1_000_000))
            }),
        };
        state.http_calls.dispatched.push(call.clone());
        state.http_calls.pending.insert(token, call);
        write_u32(&mut caller, token_ptr, token)
    })())
}
