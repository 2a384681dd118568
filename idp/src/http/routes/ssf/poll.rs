//! RFC 8936 poll delivery: `POST /ssf/poll` by the stream's receiver (`ssf.read` or
//! `ssf.manage`). The request's `ack` and `setErrs` (both acknowledge: the SETs leave the
//! outbox; errors are logged) are applied first, then up to `maxEvents` undelivered SETs are
//! answered as `{"sets": {jti: SET}, "moreAvailable": bool}`. Without `returnImmediately` an
//! empty answer waits (long poll) up to `ssf.max_poll_wait_seconds` for a SET. A SET stays in
//! the outbox until acknowledged, so one answered but lost is answered again. Only an enabled
//! stream answers SETs (a paused one keeps them). Errors: 400 `{"err", "description"}`.

use super::auth::{Need, Refused, receiver};
use crate::http::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Deserialize, Default)]
struct PollRequest {
    #[serde(rename = "maxEvents")]
    max_events: Option<u32>,
    #[serde(rename = "returnImmediately", default)]
    return_immediately: bool,
    #[serde(default)]
    ack: Vec<String>,
    #[serde(rename = "setErrs", default)]
    set_errs: HashMap<String, SetErr>,
}

#[derive(Deserialize)]
struct SetErr {
    err: String,
    #[serde(default)]
    description: Option<String>,
}

/// How often an empty long poll looks again without a wake-up (SETs fanned out by another
/// replica do not move this process's outbox signal).
const RECHECK: Duration = Duration::from_millis(250);
const MAX_ACKS: usize = 1000;

fn invalid(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"err": "invalid_request", "description": description})),
    )
        .into_response()
}

fn unavailable(e: &crate::store::StoreError) -> Response {
    tracing::warn!(error = %e, "SSF poll storage failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "temporarily_unavailable", "error_description": "storage is unavailable; retry"})),
    )
        .into_response()
}

pub async fn poll(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let client = match receiver(&state, &headers, Need::Read).await {
        Ok(c) => c,
        Err(Refused(r)) => return r,
    };
    let req: PollRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PollRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(_) => return invalid("the body is not an RFC 8936 poll request"),
        }
    };
    if req.ack.len() + req.set_errs.len() > MAX_ACKS {
        return invalid("too many acknowledgements in one request");
    }
    let stream = match state.store.stream_of_client(&client).await {
        Ok(Some(s)) => s,
        Ok(None) => return invalid("this receiver has no stream"),
        Err(e) => return unavailable(&e),
    };
    let mut done: Vec<String> = req.ack.clone();
    for (jti, e) in &req.set_errs {
        tracing::warn!(receiver = %client, jti = %jti, err = %e.err, description = e.description.as_deref().unwrap_or(""), "SSF receiver refused a SET");
        done.push(jti.clone());
    }
    if !done.is_empty()
        && let Err(e) = state.store.ack(&stream.stream_id, &done).await
    {
        return unavailable(&e);
    }
    let max = state.settings.ssf.max_events_per_poll;
    let limit = i64::from(req.max_events.unwrap_or(max).min(max));
    let empty = || Json(json!({"sets": {}, "moreAvailable": false})).into_response();
    if limit == 0 {
        return empty();
    }
    let deadline = Instant::now()
        + if req.return_immediately {
            Duration::ZERO
        } else {
            state.settings.ssf.max_poll_wait
        };
    let mut outbox = state.outbox.subscribe();
    let mut revoked = state.store.revocation_signal().subscribe();
    let mut shutdown = state.shutdown_signal();
    if stream.status != "enabled" {
        // a paused or disabled stream answers nothing; a long poll still waits its time, so
        // a receiver polling in a loop is paced as usual
        tokio::select! {
            _ = shutdown.changed() => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
        return empty();
    }
    loop {
        let sets = match state.store.stream_sets(&stream.stream_id, limit + 1).await {
            Ok(s) => s,
            Err(e) => return unavailable(&e),
        };
        if !sets.is_empty() || Instant::now() >= deadline || *shutdown.borrow() {
            let more = i64::try_from(sets.len()).unwrap_or(i64::MAX) > limit;
            let map: Map<String, Value> = sets
                .into_iter()
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .map(|(jti, token)| (jti, Value::String(token)))
                .collect();
            return Json(json!({"sets": map, "moreAvailable": more})).into_response();
        }
        tokio::select! {
            _ = outbox.changed() => {}
            _ = revoked.changed() => {}
            _ = shutdown.changed() => {}
            () = tokio::time::sleep(RECHECK) => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}
