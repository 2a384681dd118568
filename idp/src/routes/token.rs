//! `POST /oauth2/token`: authenticate the client, dispatch to the grant.

use crate::client_auth::authenticate;
use crate::error::OAuthError;
use crate::form::Form;
use crate::grants::client_credentials;
use crate::state::{AppState, unix_now};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(body) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(body),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, OAuthError> {
    let form = Form::parse(headers, body)?;
    let grant_type = form.require("grant_type")?;
    let auth = authenticate(&state.settings, headers, &form)?;
    let now = unix_now();
    match grant_type {
        "client_credentials" => client_credentials::grant(state, &auth, &form, now).await,
        _ => Err(OAuthError::UnsupportedGrantType),
    }
}
