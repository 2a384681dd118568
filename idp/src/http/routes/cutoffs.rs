//! `POST /oauth2/cutoffs`: a gateway reports a cut-off after its own logout with a federated
//! issuer's token, so that every other gateway learns it from the feed. client_secret_basic as
//! a `gateway = true` client; JSON `{"iss": I, "sid": S, "cutoff": T}` or `{"iss": I, "sub": U,
//! "cutoff": T}` (T in Unix seconds, at most 60 s ahead). I must be one of the client's
//! `federated_issuers` (else 403 `unauthorized_client`). Stored durably, then `200
//! {"stored": true}`; the entry's `exp` is T plus that issuer's `max_token_lifetime_seconds`.

use crate::http::state::{AppState, unix_now};
use crate::oauth::client_auth::authenticate_gateway;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::store::{CutoffKey, NewCutoff};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

const ENDPOINT: &str = "cutoffs";
/// How far ahead of the hub's clock a reported cut-off may be.
pub const MAX_FUTURE_SECONDS: i64 = 60;
/// The longest `sid` or `sub` accepted.
const MAX_VALUE_BYTES: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    iss: String,
    sid: Option<String>,
    sub: Option<String>,
    cutoff: i64,
}

enum Refusal {
    OAuth(OAuthError),
    /// The client may not report for this issuer (403).
    NotAllowed,
}

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        Refusal::OAuth(e)
    }
}

pub async fn report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(()) => {
            state.metrics.federation(ENDPOINT, "stored");
            (
                [(header::CACHE_CONTROL, "no-store")],
                Json(json!({"stored": true})),
            )
                .into_response()
        }
        Err(Refusal::NotAllowed) => {
            state.metrics.federation(ENDPOINT, "unauthorized_client");
            (
                StatusCode::FORBIDDEN,
                [(header::CACHE_CONTROL, "no-store")],
                Json(json!({
                    "error": "unauthorized_client",
                    "error_description": "this client may not report cut-offs for this issuer"
                })),
            )
                .into_response()
        }
        Err(Refusal::OAuth(e)) => {
            state.metrics.federation(ENDPOINT, e.code());
            e.into_response()
        }
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    let client = authenticate_gateway(&state.settings, headers, &Params::default())?;
    if !client.gateway {
        return Err(Refusal::NotAllowed);
    }
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !essence.is_some_and(|e| e.eq_ignore_ascii_case("application/json")) {
        return Err(OAuthError::InvalidRequest("the body must be application/json".into()).into());
    }
    let report: Report = serde_json::from_slice(body).map_err(|_| {
        OAuthError::InvalidRequest(
            "the body must be {\"iss\", \"sid\" or \"sub\", \"cutoff\"}".into(),
        )
    })?;
    let (key, value) = match (&report.sid, &report.sub) {
        (Some(sid), None) => (CutoffKey::Sid, sid),
        (None, Some(sub)) => (CutoffKey::Sub, sub),
        _ => {
            return Err(OAuthError::InvalidRequest(
                "exactly one of sid and sub is required".into(),
            )
            .into());
        }
    };
    if value.is_empty() || value.len() > MAX_VALUE_BYTES {
        return Err(OAuthError::InvalidRequest("sid or sub is empty or too long".into()).into());
    }
    let now = unix_now();
    if report.cutoff < 0 || report.cutoff > now.saturating_add(MAX_FUTURE_SECONDS) {
        return Err(OAuthError::InvalidRequest(
            "cutoff must be a time in Unix seconds, at most 60 s ahead".into(),
        )
        .into());
    }
    if !client.federated_issuers.contains(&report.iss) {
        return Err(Refusal::NotAllowed);
    }
    let issuer = state
        .settings
        .federation
        .issuer(&report.iss)
        .ok_or(Refusal::NotAllowed)?;
    let lifetime = i64::try_from(issuer.max_token_lifetime_seconds).unwrap_or(i64::MAX);
    state
        .store
        .record_cutoff(&NewCutoff {
            iss: &report.iss,
            key,
            value,
            cutoff: report.cutoff,
            exp: report.cutoff.saturating_add(lifetime),
            now,
        })
        .await
        .map_err(OAuthError::from)?;
    Ok(())
}
