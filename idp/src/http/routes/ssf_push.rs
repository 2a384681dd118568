//! `POST /ssf/push/{stream}` (RFC 8935): a Shared Signals transmitter pushes one SET
//! (`Content-Type: application/secevent+jwt`) for the configured stream `{stream}`, with the
//! `Authorization` header the hub gave it when it created the stream. `202 Accepted` once the
//! SET and its cut-offs are stored (a redelivery of a stored SET too); `400` with
//! `{"err", "description"}` and an RFC 8935 §2.4 code for any refusal (nothing stored); `503`
//! when the database is unavailable (the transmitter delivers again).

use crate::federation::ssf::receive::{ReceiveError, Received, receive};
use crate::federation::ssf::set::MAX_SET_BYTES;
use crate::http::state::{AppState, unix_now};
use crate::oauth::error::OAuthError;
use crate::settings::Delivery;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use subtle::ConstantTimeEq;

const ENDPOINT: &str = "ssf_push";

fn refuse(status: StatusCode, err: &'static str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"err": err, "description": description})),
    )
        .into_response()
}

pub async fn push(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let count = |outcome: &'static str| state.metrics.federation(ENDPOINT, outcome);
    let Some(stream) = state.hub.ssf.stream(&name) else {
        count("unknown_stream");
        return refuse(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "no stream of this name",
        );
    };
    let Delivery::Push { authorization, .. } = &stream.config.delivery else {
        count("unknown_stream");
        return refuse(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "this stream is not delivered by push",
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !bool::from(given.ct_eq(authorization.0.as_bytes())) {
        count("authentication_failed");
        return refuse(
            StatusCode::BAD_REQUEST,
            "authentication_failed",
            "the Authorization header is not the one this stream was given",
        );
    }
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !essence.is_some_and(|e| e.eq_ignore_ascii_case("application/secevent+jwt")) {
        count("wrong_content_type");
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/secevent+jwt",
        );
    }
    if body.len() > MAX_SET_BYTES {
        count("too_large");
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the SET is larger than 32 KiB",
        );
    }
    let Ok(token) = std::str::from_utf8(&body) else {
        count("malformed");
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the SET is not text",
        );
    };
    let counter: crate::federation::ssf::Count = {
        let state = Arc::clone(&state);
        Arc::new(move |endpoint, outcome| state.metrics.federation(endpoint, outcome))
    };
    let issuers = &state.settings.federation.issuers;
    match receive(
        stream,
        &*state.store,
        issuers,
        token,
        None,
        unix_now(),
        &counter,
    )
    .await
    {
        Ok(r) => {
            count(match r {
                Received::Stored { .. } => "stored",
                Received::Redelivered => "redelivered",
            });
            (StatusCode::ACCEPTED, [(header::CACHE_CONTROL, "no-store")]).into_response()
        }
        Err(ReceiveError::Invalid(e)) => {
            count(e.name());
            tracing::warn!(stream = %name, error = %e, "pushed SET refused");
            refuse(StatusCode::BAD_REQUEST, e.err(), &e.to_string())
        }
        Err(ReceiveError::NotReady) => {
            count("not_ready");
            tracing::warn!(stream = %name, "pushed SET before the transmitter's keys were loaded: 503, to be delivered again");
            OAuthError::Unavailable("the transmitter's keys are not loaded yet".into())
                .into_response()
        }
        Err(ReceiveError::Store(e)) => {
            let error = OAuthError::from(e);
            count(match error {
                OAuthError::Unavailable(_) => "unavailable",
                _ => "server_error",
            });
            error.into_response()
        }
    }
}
