//! `POST /oauth2/backchannel-logout` (OIDC Back-Channel Logout 1.0 §2.5–2.8): a federated
//! provider posts a `logout_token` here (register this URL as its clients'
//! `backchannel_logout_uri`), or a gateway forwards one it received; the hub validates it again
//! either way (`federation::logout`). `200` with `Cache-Control: no-store` and no body once the
//! cut-off is stored; `400` `{"error":"invalid_request","error_description":…}` for any refusal
//! (nothing stored); `503` when the database is unavailable.

use crate::federation::logout::{LogoutFailure, receive};
use crate::http::state::{AppState, unix_now};
use crate::oauth::error::OAuthError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use filter::logout::backchannel::{LogoutTokenError, error_body};
use std::sync::Arc;

const ENDPOINT: &str = "backchannel_logout";

pub async fn receive_logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = if is_form(&headers) {
        receive(&state.hub, &*state.store, &body, unix_now()).await
    } else {
        Err(LogoutFailure::Invalid(LogoutTokenError::BadForm))
    };
    match result {
        Ok(event) => {
            tracing::info!(issuer = %event.issuer, "back-channel logout stored as a cut-off");
            state.metrics.federation(ENDPOINT, "stored");
            (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
        }
        Err(LogoutFailure::Invalid(e)) => {
            state.metrics.federation(ENDPOINT, e.name());
            let mut res = (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                error_body(e),
            )
                .into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(LogoutFailure::Store(e)) => {
            let error = OAuthError::from(e);
            let outcome = match error {
                OAuthError::Unavailable(_) => "unavailable",
                _ => "server_error",
            };
            state.metrics.federation(ENDPOINT, outcome);
            error.into_response()
        }
    }
}

/// `application/x-www-form-urlencoded` (parameters such as `charset` allowed), as BCL §2.5 says.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}
