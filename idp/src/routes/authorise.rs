//! `GET|POST /oauth2/authorise` (alias `/oauth2/authorize`): the authorization endpoint for
//! `response_type=code`. A valid request gets the login page; the login form posts back here
//! with the request, the credentials and a CSRF token (double submit: a cookie and a hidden
//! field, the cookie cleared on success so a replayed form is refused); a successful login
//! issues a code and answers 303 to the client's redirect URI.
//!
//! Consent and a single-sign-on session are not there yet (issue 4): every client is configured
//! by the operator, and consent is implied.

use super::AUTHORISE_PATH;
use crate::authorize::{self, AuthoriseError, ValidRequest};
use crate::pages::{self, LoginPage};
use crate::state::{AppState, unix_now};
use crate::tokens::random_id;
use crate::users::{LoginError, verify_password};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use subtle::ConstantTimeEq;

const CSRF_COOKIE: &str = "idp_csrf";
const CSRF_FIELD: &str = "login_csrf";
/// The authorization request parameters carried through the login form.
const CARRIED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
];
/// Longest value accepted for any parameter.
const MAX_PARAM_BYTES: usize = 4096;

type Params = Vec<(String, String)>;

pub async fn get(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    match serde_urlencoded::from_str::<Params>(query.as_deref().unwrap_or("")) {
        Ok(params) => start(&state, &params),
        Err(_) => pages::error_page(StatusCode::BAD_REQUEST, "The request is malformed."),
    }
}

pub async fn post(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "The request must be a form submission.",
        );
    }
    let Ok(params) = serde_urlencoded::from_bytes::<Params>(&body) else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The request is malformed.");
    };
    if params.iter().any(|(k, _)| k == CSRF_FIELD) {
        let peer = peer.map(|Extension(ConnectInfo(a))| a.ip());
        login(&state, &headers, &params, peer).await
    } else {
        start(&state, &params)
    }
}

/// Checks the request; errors are shown or redirected (never redirected to an untrusted URI).
fn checked(state: &AppState, params: &Params) -> Result<ValidRequest, Response> {
    if params.iter().any(|(_, v)| v.len() > MAX_PARAM_BYTES) {
        return Err(pages::error_page(
            StatusCode::BAD_REQUEST,
            "A request parameter is too long.",
        ));
    }
    let request = authorize::validate(&state.settings, params).map_err(|e| error(state, &e))?;
    let prompt = params
        .iter()
        .find(|(k, _)| k == "prompt")
        .map_or("", |(_, v)| v.as_str());
    if prompt.split(' ').any(|p| p == "none") {
        // No single-sign-on session yet: a login is always needed.
        let e = AuthoriseError::Redirect {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            error: "login_required",
            description: "the user must sign in".into(),
        };
        return Err(error(state, &e));
    }
    Ok(request)
}

fn error(state: &AppState, e: &AuthoriseError) -> Response {
    match e.redirect_url(&state.settings.issuer) {
        Some(url) => see_other(&url),
        None => {
            tracing::info!(reason = %e, "authorization request refused");
            pages::error_page(StatusCode::BAD_REQUEST, &e.to_string())
        }
    }
}

fn see_other(url: &str) -> Response {
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

fn start(state: &AppState, params: &Params) -> Response {
    match checked(state, params) {
        Ok(request) => login_page(state, &request, params, None, "", None),
        Err(res) => res,
    }
}

/// The login page, with a CSRF token: a new one (and its cookie) unless `csrf` is given.
fn login_page(
    state: &AppState,
    request: &ValidRequest,
    params: &Params,
    csrf: Option<&str>,
    username: &str,
    error: Option<&str>,
) -> Response {
    let carried: Params = params
        .iter()
        .filter(|(k, v)| CARRIED.contains(&k.as_str()) && !v.is_empty())
        .cloned()
        .collect();
    let fresh = random_id();
    let token = csrf.unwrap_or(&fresh);
    let mut res = pages::render(
        StatusCode::OK,
        &LoginPage {
            action: AUTHORISE_PATH,
            client_id: &request.client_id,
            scopes: &request.scopes,
            params: &carried,
            csrf: token,
            username,
            error,
        },
    );
    if csrf.is_none() {
        set_csrf_cookie(state, &mut res, token, false);
    }
    res
}

fn set_csrf_cookie(state: &AppState, res: &mut Response, value: &str, clear: bool) {
    let secure = if state.settings.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let max_age = if clear { "; Max-Age=0" } else { "" };
    let cookie =
        format!("{CSRF_COOKIE}={value}; Path=/oauth2; HttpOnly; SameSite=Lax{secure}{max_age}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn csrf_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == CSRF_COOKIE)
        .map(|(_, value)| value)
}

#[tracing::instrument(skip_all)]
async fn login(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    peer: Option<IpAddr>,
) -> Response {
    let single = |name: &str| -> Result<Option<&str>, ()> {
        let mut values = params.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(());
        }
        Ok(first)
    };
    let (Ok(csrf), Ok(username), Ok(password)) =
        (single(CSRF_FIELD), single("username"), single("password"))
    else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    let request = match checked(state, params) {
        Ok(r) => r,
        Err(res) => return res,
    };
    let csrf_ok = match (csrf, csrf_cookie(headers)) {
        (Some(field), Some(cookie)) => bool::from(field.as_bytes().ct_eq(cookie.as_bytes())),
        _ => false,
    };
    let Some(csrf) = csrf.filter(|_| csrf_ok) else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in form has expired or was already used. Start again from the application.",
        );
    };
    let username = username.unwrap_or("");
    let password = password.unwrap_or("");
    let now = unix_now();
    if username.is_empty() || password.is_empty() || username.len() > 256 {
        return login_page(
            state,
            &request,
            params,
            Some(csrf),
            "",
            Some("Enter your username and password."),
        );
    }
    match verify_password(state, username, password, peer, now).await {
        Ok(user) => {
            let amr = ["pwd".to_owned()];
            match authorize::issue_code(state, &request, &user.sub, &amr, now, now).await {
                Ok(url) => {
                    tracing::info!(client = %request.client_id, "user signed in; code issued");
                    let mut res = see_other(&url);
                    set_csrf_cookie(state, &mut res, "", true);
                    res
                }
                Err(e) => {
                    tracing::error!(error = %e, "issuing a code failed");
                    pages::error_page(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "The server could not complete the sign-in.",
                    )
                }
            }
        }
        Err(LoginError::Rejected) => login_page(
            state,
            &request,
            params,
            Some(csrf),
            username,
            Some("Invalid username or password."),
        ),
        Err(LoginError::Server(e)) => {
            tracing::error!(error = %e, "login failed on the server side");
            pages::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server could not complete the sign-in.",
            )
        }
    }
}
