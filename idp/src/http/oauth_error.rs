//! Renders [`OAuthError`] as RFC 6749 §5.2 JSON: 401 with a `WWW-Authenticate` challenge for
//! `invalid_client`, `DPoP-Nonce` with `use_dpop_nonce` (RFC 9449 §8), 500 (details logged,
//! never sent) for server errors, 503 with `Retry-After` when the database is unavailable
//! (`temporarily_unavailable`, as RFC 6749 §4.1.2.1 names it), else 400.
//!
//! `error_description` keeps to the characters RFC 6749 §5.2 allows (printable ASCII without
//! `"` and `\`): a description that quotes request input is cleaned here
//! ([`clean_description`]).

use crate::oauth::error::{OAuthError, clean_description};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The header that carries a DPoP server nonce (RFC 9449 §8).
pub const DPOP_NONCE: &str = "dpop-nonce";

/// The RFC 6749 §5.2 answer for `error` with `status` (the refusals of the router and the
/// request limits: 405, 413, 431).
pub fn with_status(status: StatusCode, error: &OAuthError) -> Response {
    let mut body = json!({"error": error.code()});
    if let Some(d) = error.description() {
        body["error_description"] = clean_description(d).into();
    }
    let mut res = (status, Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self {
            OAuthError::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthError::Server(ref detail) => {
                tracing::error!(%detail, "server error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            OAuthError::Unavailable(ref detail) => {
                tracing::warn!(%detail, "storage unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        let mut res = with_status(status, &self);
        let h = res.headers_mut();
        if let OAuthError::UseDpopNonce { nonce } = &self
            && let Ok(nonce) = HeaderValue::from_str(nonce)
        {
            h.insert(DPOP_NONCE, nonce);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"idp\""),
            );
        }
        res
    }
}
