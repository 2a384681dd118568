//! The router's own refusals — a method the path does not serve (405), a body over
//! `http.max_body_bytes` (413), headers over `http.max_header_bytes` or `http.max_headers` (431)
//! — answered in the shape of the endpoint family they reach: an HTML error page for the
//! browser endpoints, an RFC 6750 challenge (no body) for userinfo, RFC 6749 §5.2 JSON for the
//! rest.

use crate::http::oauth_error;
use crate::http::pages;
use crate::http::routes::{AUTHORISE_PATH, AUTHORIZE_PATH, LOGOUT_PATH, USERINFO_PATH};
use crate::oauth::error::OAuthError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// How an endpoint answers errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The browser endpoints (authorise, logout): an HTML page.
    Page,
    /// userinfo: RFC 6750 §3, the error in `WWW-Authenticate`.
    Challenge,
    /// Everything else: RFC 6749 §5.2 JSON.
    Json,
}

pub fn family(path: &str) -> Family {
    match path {
        AUTHORISE_PATH | AUTHORIZE_PATH | LOGOUT_PATH => Family::Page,
        USERINFO_PATH => Family::Challenge,
        _ => Family::Json,
    }
}

/// `invalid_request` with `status` and `description` (static text: never request input), in
/// the shape of `path`'s endpoint.
pub fn refuse(path: &str, status: StatusCode, description: &'static str) -> Response {
    match family(path) {
        Family::Page => {
            let heading = if path == LOGOUT_PATH {
                pages::SIGN_OUT_ERROR
            } else {
                pages::SIGN_IN_ERROR
            };
            pages::error_page_headed(status, heading, description)
        }
        Family::Challenge => {
            let mut res = status.into_response();
            let challenge = format!(
                "Bearer realm=\"userinfo\", error=\"invalid_request\", error_description=\"{description}\""
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            res
        }
        Family::Json => {
            oauth_error::with_status(status, &OAuthError::InvalidRequest(description.into()))
        }
    }
}
