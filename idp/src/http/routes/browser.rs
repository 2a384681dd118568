//! What the browser-facing endpoints (authorise, logout) share: form parsing, redirects, the
//! double-submit CSRF cookie, and the single-sign-on session cookie.

use crate::http::cookies::{self, Lifetime};
use crate::http::csrf::{self, Purpose};
use crate::http::pages;
use crate::http::state::{AppState, unix_now};
use crate::oauth::sso::{self, SsoSession};
use crate::oauth::tokens::random_id;
use crate::settings::User;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub type Params = Vec<(String, String)>;

/// How a browser-facing request fails: one error page, rendered in one place
/// ([`IntoResponse`]).
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// The request cannot be served as sent (400); the message is shown to the user.
    #[error("{message}")]
    BadRequest {
        /// The page's heading (default: a generic one).
        heading: Option<&'static str>,
        message: String,
    },
    /// Something failed on our side: logged, never shown. 503 with `Retry-After` when the
    /// database is unavailable (a replica's PostgreSQL restarting, a full disk), else 500.
    #[error("{what} failed: {detail}")]
    Server {
        what: &'static str,
        detail: String,
        unavailable: bool,
    },
}

/// A failure on the server's side, and whether it is the database being unavailable (which a
/// retry may get past) rather than a fault.
pub trait ServerFailure: std::fmt::Display {
    fn unavailable(&self) -> bool;
}

impl ServerFailure for crate::store::StoreError {
    fn unavailable(&self) -> bool {
        self.is_unavailable()
    }
}

impl ServerFailure for crate::oauth::error::OAuthError {
    fn unavailable(&self) -> bool {
        matches!(self, crate::oauth::error::OAuthError::Unavailable(_))
    }
}

impl BrowserError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        BrowserError::BadRequest {
            heading: None,
            message: message.into(),
        }
    }

    pub fn server(what: &'static str, e: &dyn ServerFailure) -> Self {
        BrowserError::Server {
            what,
            detail: e.to_string(),
            unavailable: e.unavailable(),
        }
    }
}

impl IntoResponse for BrowserError {
    fn into_response(self) -> Response {
        match self {
            BrowserError::BadRequest {
                heading: None,
                message,
            } => pages::error_page(StatusCode::BAD_REQUEST, &message),
            BrowserError::BadRequest {
                heading: Some(heading),
                message,
            } => pages::error_page_headed(StatusCode::BAD_REQUEST, heading, &message),
            BrowserError::Server {
                what,
                detail,
                unavailable: true,
            } => {
                tracing::warn!(error = %detail, "{what} failed: storage unavailable");
                let mut page = pages::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is briefly unavailable. Try again in a moment.",
                );
                page.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                page
            }
            BrowserError::Server { what, detail, .. } => {
                tracing::error!(error = %detail, "{what} failed");
                pages::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The server could not complete the request.",
                )
            }
        }
    }
}

/// The browser's CSRF binding (random, HttpOnly; the forms' tokens are bound to it).
pub const CSRF_COOKIE: &str = "idp_csrf";
pub const SESSION_COOKIE: &str = "idp_session";
/// Longest value accepted for any parameter.
pub const MAX_PARAM_BYTES: usize = 4096;

/// The query of a GET.
pub fn query_params(query: Option<&str>) -> Result<Params, BrowserError> {
    let params: Params = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| BrowserError::bad_request("The request is malformed."))?;
    check_lengths(params)
}

/// The body of a form POST.
pub fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, BrowserError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(BrowserError::bad_request(
            "The request must be a form submission.",
        ));
    }
    let params: Params = serde_urlencoded::from_bytes(body)
        .map_err(|_| BrowserError::bad_request("The request is malformed."))?;
    check_lengths(params)
}

fn check_lengths(params: Params) -> Result<Params, BrowserError> {
    if params.iter().any(|(_, v)| v.len() > MAX_PARAM_BYTES) || params.len() > 64 {
        return Err(BrowserError::bad_request(
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

pub fn server_error(what: &'static str, e: &dyn ServerFailure) -> Response {
    BrowserError::server(what, e).into_response()
}

/// The browser's CSRF binding: the `idp_csrf` cookie, or a new value to set (`true`).
fn browser_binding(headers: &HeaderMap) -> (String, bool) {
    match cookies::get(headers, CSRF_COOKIE).filter(|v| {
        (16..=64).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        Some(v) => (v.to_owned(), false),
        None => (random_id(), true),
    }
}

/// A page holding a form: `render` gets the form's new CSRF token (issued for `purpose`), and
/// the browser's binding cookie is set if it had none.
pub async fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    purpose: Purpose,
    render: impl FnOnce(&str) -> Response,
) -> Response {
    let (browser, new) = browser_binding(headers);
    let token = match csrf::issue(&*state.store, &browser, purpose, unix_now()).await {
        Ok(t) => t,
        Err(e) => return server_error("issuing a form token", &e),
    };
    let mut res = render(&token);
    if new {
        cookies::set(
            &mut res,
            &state.settings.issuer,
            CSRF_COOKIE,
            &browser,
            Lifetime::Browser,
        );
    }
    res
}

/// Checks (and uses up) the form's CSRF token `field`: it must have been issued to this
/// browser, for this form, and not used before.
pub async fn check_form_token(
    state: &AppState,
    headers: &HeaderMap,
    field: Option<&str>,
    purpose: Purpose,
    heading: &'static str,
) -> Result<(), BrowserError> {
    let refused = || BrowserError::BadRequest {
        heading: Some(heading),
        message: "This form has expired or was already used. Start again from the application."
            .into(),
    };
    let (Some(token), Some(browser)) = (
        field.filter(|f| !f.is_empty() && f.len() <= 64),
        cookies::get(headers, CSRF_COOKIE),
    ) else {
        return Err(refused());
    };
    match csrf::consume(&*state.store, browser, token, purpose, unix_now()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(refused()),
        Err(e) => Err(BrowserError::server("checking a form token", &e)),
    }
}

/// The browser's live single-sign-on session and its user (a user removed from the
/// configuration has no session).
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<(SsoSession, User)>, BrowserError> {
    let Some(value) = cookies::get(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let session = sso::find(&*state.store, value, now)
        .await
        .map_err(|e| BrowserError::server("reading the session", &e))?;
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
