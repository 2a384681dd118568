//! Server-rendered HTML pages (askama templates in `templates/`, HTML-escaped), served with
//! anti-framing and no-store headers.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub action: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    /// The authorization request, carried through the form.
    pub params: &'a [(String, String)],
    pub csrf: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub action: &'a str,
    pub client_id: &'a str,
    pub username: &'a str,
    pub scopes: &'a [String],
    pub params: &'a [(String, String)],
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub action: &'a str,
    pub params: &'a [(String, String)],
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage;

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub heading: &'a str,
    pub message: &'a str,
}

pub const SIGN_IN_ERROR: &str = "This sign-in request cannot be completed";
pub const SIGN_OUT_ERROR: &str = "This sign-out request cannot be completed";

/// Renders `page` with `status` and the headers every page gets.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    let mut res = match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    };
    secure_headers(&mut res);
    res
}

/// No caching, no framing (clickjacking), no referrer (the URL carries the request), no scripts.
pub fn secure_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// An error of the sign-in (authorization) endpoint.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    error_page_headed(status, SIGN_IN_ERROR, message)
}

pub fn error_page_headed(status: StatusCode, heading: &str, message: &str) -> Response {
    render(status, &ErrorPage { heading, message })
}
