//! The stream management API (SSF 1.0 §8.1): the configuration endpoint (create `POST` → 201,
//! read `GET`, update `PATCH`, replace `PUT`, delete `DELETE` → 204; a second stream of the same
//! receiver → 409), the status endpoint (`GET`, `POST`), the verification endpoint (`POST` →
//! 204, then a `verification` SET carrying the receiver's `state` is delivered on the stream).
//! Errors are JSON `{"error", "error_description"}` with 400, 404 or 409.

use super::auth::{Need, Refused, receiver};
use crate::http::state::{AppState, unix_now};
use crate::oauth::tokens::random_id;
use crate::ssf::set;
use crate::ssf::stream::{self, StreamConfig, StreamRequest, config_of};
use crate::store::events::{NewDelivery, StreamRecord, Target};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// A refusal: the answer itself, boxed (it is large and the error path is cold).
struct Failure(Box<Response>);

fn fail(status: StatusCode, code: &str, description: impl Into<String>) -> Failure {
    let description: String = description.into();
    Failure(Box::new(
        (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response(),
    ))
}

fn bad(description: impl Into<String>) -> Failure {
    fail(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn not_found() -> Failure {
    fail(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such stream for this receiver",
    )
}

fn unavailable(e: &crate::store::StoreError) -> Failure {
    tracing::warn!(error = %e, "SSF stream storage failed");
    fail(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "storage is unavailable; retry",
    )
}

fn query_stream_id(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "stream_id")
        .map(|(_, v)| v.into_owned())
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|_| bad("the body is not the JSON object expected"))
}

/// The receiver's stream; 404 unless it exists and (when given) has `stream_id`.
async fn own_stream(
    state: &AppState,
    client: &str,
    stream_id: Option<&str>,
) -> Result<(StreamRecord, StreamConfig), Failure> {
    let record = state
        .store
        .stream_of_client(client)
        .await
        .map_err(|e| unavailable(&e))?
        .filter(|r| stream_id.is_none_or(|id| id == r.stream_id))
        .ok_or_else(not_found)?;
    let config = config_of(&record).ok_or_else(not_found)?;
    Ok((record, config))
}

fn shown(state: &AppState, record: &StreamRecord, config: &StreamConfig) -> Value {
    stream::to_json(&state.settings.issuer, record, config)
}

async fn authorised(state: &AppState, headers: &HeaderMap, need: Need) -> Result<String, Failure> {
    receiver(state, headers, need)
        .await
        .map_err(|Refused(r)| Failure(Box::new(r)))
}

fn either(r: Result<Response, Failure>) -> Response {
    r.unwrap_or_else(|e| *e.0)
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    either(async {
        let client = authorised(&state, &headers, Need::Manage).await?;
        let req: StreamRequest = json_body(&body)?;
        let config = StreamConfig::from_request(&req).map_err(|e| bad(e.0))?;
        let now = unix_now();
        let record = StreamRecord {
            stream_id: random_id(),
            client_id: client,
            delivery_method: config.method.clone(),
            config: serde_json::to_string(&config).map_err(|_| bad("unencodable"))?,
            status: "enabled".into(),
            reason: None,
            created_at: now,
            updated_at: now,
        };
        if !state.store.create_stream(&record).await.map_err(|e| unavailable(&e))? {
            return Err(fail(
                StatusCode::CONFLICT,
                "conflict",
                "this receiver already has a stream",
            ));
        }
        tracing::info!(receiver = %record.client_id, stream = %record.stream_id, method = %config.method, "SSF stream created");
        Ok((StatusCode::CREATED, Json(shown(&state, &record, &config))).into_response())
    }.await)
}

pub async fn read(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    either(
        async {
            let client = authorised(&state, &headers, Need::Read).await?;
            match query_stream_id(query.as_deref()) {
                Some(id) => {
                    let (record, config) = own_stream(&state, &client, Some(&id)).await?;
                    Ok(Json(shown(&state, &record, &config)).into_response())
                }
                // Without stream_id: every stream of the receiver (SSF 1.0 §8.1.1.2).
                None => {
                    let all: Vec<Value> = match own_stream(&state, &client, None).await {
                        Ok((record, config)) => vec![shown(&state, &record, &config)],
                        Err(r) if r.0.status() == StatusCode::NOT_FOUND => Vec::new(),
                        Err(r) => return Err(r),
                    };
                    Ok(Json(all).into_response())
                }
            }
        }
        .await,
    )
}

async fn change(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    replace: bool,
) -> Result<Response, Failure> {
    let client = authorised(state, headers, Need::Manage).await?;
    let req: StreamRequest = json_body(body)?;
    let id = req
        .stream_id
        .clone()
        .ok_or_else(|| bad("stream_id is required"))?;
    let (mut record, config) = own_stream(state, &client, Some(&id)).await?;
    let config = if replace {
        StreamConfig::from_request(&req)
    } else {
        config.updated(&req)
    }
    .map_err(|e| bad(e.0))?;
    record.delivery_method = config.method.clone();
    record.config = serde_json::to_string(&config).map_err(|_| bad("unencodable"))?;
    record.updated_at = unix_now();
    if !state
        .store
        .update_stream(&record)
        .await
        .map_err(|e| unavailable(&e))?
    {
        return Err(not_found());
    }
    state.outbox.notify();
    Ok(Json(shown(state, &record, &config)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    either(change(&state, &headers, &body, false).await)
}

pub async fn replace(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    either(change(&state, &headers, &body, true).await)
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    either(
        async {
            let client = authorised(&state, &headers, Need::Manage).await?;
            let id =
                query_stream_id(query.as_deref()).ok_or_else(|| bad("stream_id is required"))?;
            if !state
                .store
                .delete_stream(&id, &client)
                .await
                .map_err(|e| unavailable(&e))?
            {
                return Err(not_found());
            }
            tracing::info!(receiver = %client, stream = %id, "SSF stream deleted");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

fn status_json(record: &StreamRecord) -> Value {
    let mut v = json!({"stream_id": record.stream_id, "status": record.status});
    if let Some(r) = &record.reason {
        v["reason"] = json!(r);
    }
    v
}

pub async fn status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    either(
        async {
            let client = authorised(&state, &headers, Need::Read).await?;
            let id = query_stream_id(query.as_deref());
            let (record, _) = own_stream(&state, &client, id.as_deref()).await?;
            Ok(Json(status_json(&record)).into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct StatusRequest {
    stream_id: String,
    status: String,
    reason: Option<String>,
}

/// Stores `delivery` and wakes the delivery loops.
async fn enqueue(state: &AppState, delivery: NewDelivery) -> Result<(), Failure> {
    state
        .store
        .enqueue(&delivery, unix_now())
        .await
        .map_err(|e| unavailable(&e))?;
    state.outbox.notify();
    Ok(())
}

fn signed_for(
    state: &AppState,
    record: &StreamRecord,
    claims: &Value,
) -> Result<NewDelivery, Failure> {
    let (jti, token) = set::sign(&state.keys(), claims).map_err(|e| {
        tracing::error!(error = %e, "signing a SET failed");
        fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "signing failed",
        )
    })?;
    Ok(NewDelivery {
        target: Target::Stream(record.stream_id.clone()),
        jti,
        token,
    })
}

pub async fn set_status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    either(async {
        let client = authorised(&state, &headers, Need::Manage).await?;
        let req: StatusRequest = json_body(&body)?;
        if !["enabled", "paused", "disabled"].contains(&req.status.as_str()) {
            return Err(bad("status must be enabled, paused or disabled"));
        }
        if req.reason.as_ref().is_some_and(|r| r.len() > 2048) {
            return Err(bad("reason is too long"));
        }
        let (mut record, _) = own_stream(&state, &client, Some(&req.stream_id)).await?;
        let changed = record.status != req.status;
        record.status = req.status;
        record.reason = req.reason;
        record.updated_at = unix_now();
        if !state.store.update_stream(&record).await.map_err(|e| unavailable(&e))? {
            return Err(not_found());
        }
        if changed {
            tracing::info!(receiver = %client, stream = %record.stream_id, status = %record.status, "SSF stream status changed");
            let claims = set::stream_updated(
                &state.settings.issuer,
                stream::audience(&record),
                unix_now(),
                &record.stream_id,
                &record.status,
                record.reason.as_deref(),
            );
            enqueue(&state, signed_for(&state, &record, &claims)?).await?;
        }
        Ok(Json(status_json(&record)).into_response())
    }.await)
}

#[derive(Deserialize)]
struct VerifyRequest {
    stream_id: String,
    state: Option<String>,
}

pub async fn verify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    either(
        async {
            let client = authorised(&state, &headers, Need::Manage).await?;
            let req: VerifyRequest = json_body(&body)?;
            if req.state.as_ref().is_some_and(|s| s.len() > 2048) {
                return Err(bad("state is too long"));
            }
            let (record, _) = own_stream(&state, &client, Some(&req.stream_id)).await?;
            let claims = set::verification(
                &state.settings.issuer,
                stream::audience(&record),
                unix_now(),
                &record.stream_id,
                req.state.as_deref(),
            );
            enqueue(&state, signed_for(&state, &record, &claims)?).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}
