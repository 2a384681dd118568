//! Strict `application/x-www-form-urlencoded` request bodies of the token-style endpoints.

use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use axum::http::{HeaderMap, header};

/// The form body of a request, refused (`invalid_request`) unless its content type says so.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::InvalidRequest("the body is not valid form data".into()))?;
    Params::from_pairs(pairs)
}
