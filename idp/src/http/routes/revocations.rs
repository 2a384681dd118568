//! `GET /oauth2/revocations?since=CURSOR`: the feed gateways poll. Gateway clients only
//! (client_secret_basic).

use crate::http::state::{AppState, unix_now};
use crate::oauth::client_auth::authenticate_gateway;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// Entries per page; a gateway behind by more catches up over several polls.
pub const PAGE: i64 = 1_000;

pub async fn feed(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match handle(&state, &headers, query.as_deref()).await {
        Ok(body) => ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<serde_json::Value, OAuthError> {
    // Only Basic authentication here (a GET has no form body).
    let empty = Params::default();
    let client = authenticate_gateway(&state.settings, headers, &empty)?;
    if !client.gateway {
        return Err(OAuthError::UnauthorizedClient(
            "only gateway clients may read the revocation feed".into(),
        ));
    }
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| OAuthError::InvalidRequest("bad query string".into()))?;
    let mut since = None;
    for (k, v) in params {
        match k.as_str() {
            "since" if since.is_none() => {
                since = Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    OAuthError::InvalidRequest("since must be a non-negative integer".into())
                })?);
            }
            "since" => return Err(OAuthError::InvalidRequest("since is repeated".into())),
            other => {
                return Err(OAuthError::InvalidRequest(format!(
                    "unknown parameter {other:?}"
                )));
            }
        }
    }
    let (entries, cursor) = state
        .store
        .revocations_since(since, unix_now(), PAGE)
        .await?;
    let revoked: Vec<_> = entries
        .iter()
        .map(|e| match e.kind.as_str() {
            "sid" => json!({"sid": e.value, "exp": e.exp}),
            _ => json!({"jti": e.value, "exp": e.exp}),
        })
        .collect();
    Ok(json!({"cursor": cursor, "revoked": revoked}))
}
