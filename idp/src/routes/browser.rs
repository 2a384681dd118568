//! What the browser-facing endpoints (authorise, logout) share: form parsing, redirects, the
//! double-submit CSRF cookie, and the single-sign-on session cookie.

// Early returns carry the finished error page; its size does not matter on this path.
#![allow(clippy::result_large_err)]

use crate::cookies::{self, Lifetime};
use crate::pages;
use crate::settings::User;
use crate::sso::{self, SsoSession};
use crate::state::AppState;
use crate::tokens::random_id;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

pub type Params = Vec<(String, String)>;

pub const CSRF_COOKIE: &str = "idp_csrf";
pub const SESSION_COOKIE: &str = "idp_session";
/// Longest value accepted for any parameter.
pub const MAX_PARAM_BYTES: usize = 4096;

/// The query of a GET.
pub fn query_params(query: Option<&str>) -> Result<Params, Response> {
    let params: Params = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| pages::error_page(StatusCode::BAD_REQUEST, "The request is malformed."))?;
    check_lengths(params)
}

/// The body of a form POST.
pub fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, Response> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(pages::error_page(
            StatusCode::BAD_REQUEST,
            "The request must be a form submission.",
        ));
    }
    let params: Params = serde_urlencoded::from_bytes(body)
        .map_err(|_| pages::error_page(StatusCode::BAD_REQUEST, "The request is malformed."))?;
    check_lengths(params)
}

fn check_lengths(params: Params) -> Result<Params, Response> {
    if params.iter().any(|(_, v)| v.len() > MAX_PARAM_BYTES) || params.len() > 64 {
        return Err(pages::error_page(
            StatusCode::BAD_REQUEST,
            "A request parameter is too long.",
        ));
    }
    Ok(params)
}

/// The value of `name` if given at most once (`Err` if repeated).
pub fn single<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = params.iter().filter(|(k, _)| k == name);
    let first = values.next().map(|(_, v)| v.as_str());
    if values.next().is_some() {
        return Err(());
    }
    Ok(first)
}

/// Only the named parameters, non-empty (what a form carries to the next step).
pub fn carried(params: &Params, names: &[&str]) -> Params {
    params
        .iter()
        .filter(|(k, v)| names.contains(&k.as_str()) && !v.is_empty())
        .cloned()
        .collect()
}

/// 303 See Other (after a POST the browser follows with a GET).
pub fn see_other(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            res.headers_mut().insert(header::LOCATION, location);
            pages::secure_headers(&mut res);
            res
        }
        Err(_) => pages::error_page(StatusCode::INTERNAL_SERVER_ERROR, "Cannot redirect."),
    }
}

pub fn server_error(what: &str, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what} failed");
    pages::error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server could not complete the request.",
    )
}

/// A new CSRF token, set as a cookie on `res`; the page's form carries the same value.
pub fn new_csrf() -> String {
    random_id()
}

pub fn set_csrf_cookie(state: &AppState, res: &mut Response, token: &str) {
    cookies::set(
        res,
        &state.settings.issuer,
        CSRF_COOKIE,
        token,
        Lifetime::Browser,
    );
}

/// Used up: the form that carried it cannot be posted again.
pub fn clear_csrf_cookie(state: &AppState, res: &mut Response) {
    cookies::set(
        res,
        &state.settings.issuer,
        CSRF_COOKIE,
        "",
        Lifetime::Expired,
    );
}

/// Whether the form's CSRF token (`field`) equals the cookie's (constant time).
pub fn csrf_ok(headers: &HeaderMap, field: Option<&str>) -> bool {
    match (field, cookies::get(headers, CSRF_COOKIE)) {
        (Some(f), Some(c)) if !f.is_empty() => bool::from(f.as_bytes().ct_eq(c.as_bytes())),
        _ => false,
    }
}

pub fn csrf_refused() -> Response {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "This form has expired or was already used. Start again from the application.",
    )
}

/// The browser's live single-sign-on session and its user (a user removed from the
/// configuration has no session).
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<(SsoSession, User)>, Response> {
    let Some(value) = cookies::get(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let session = sso::find(&state.pool, value, now)
        .await
        .map_err(|e| server_error("reading the session", &e))?;
    Ok(session.and_then(|s| {
        let user = state.settings.user_by_sub(&s.sub).cloned()?;
        Some((s, user))
    }))
}

pub fn set_session_cookie(state: &AppState, res: &mut Response, value: &str) {
    let ttl = i64::try_from(state.settings.sso_session_ttl_seconds).unwrap_or(3600);
    cookies::set(
        res,
        &state.settings.issuer,
        SESSION_COOKIE,
        value,
        Lifetime::Seconds(ttl),
    );
}

pub fn clear_session_cookie(state: &AppState, res: &mut Response) {
    cookies::set(
        res,
        &state.settings.issuer,
        SESSION_COOKIE,
        "",
        Lifetime::Expired,
    );
}
