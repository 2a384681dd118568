//! `GET|POST /oauth2/authorise` (alias `/oauth2/authorize`): the authorization endpoint for
//! `response_type=code` and `token` (implicit).
//!
//! A valid request from a browser signed in at the IDP (the `idp_session` cookie) goes straight
//! to consent or to the client; otherwise the login page. The login and consent forms post back
//! here with the request carried in hidden fields and a single-use CSRF token bound to the
//! browser (see [`crate::http::csrf`]: a replayed form is refused, several tabs work).
//! Every POST is answered with 303.

use super::AUTHORISE_PATH;
use super::browser::{
    self, Params, carried, check_form_token, current_session, form_page, see_other, server_error,
    single,
};
use crate::http::client_address::client_address;
use crate::http::csrf::Purpose;
use crate::http::pages::{self, ConsentPage, LoginPage};
use crate::http::state::{AppState, unix_now};
use crate::oauth::authorization::{self as authorize, AuthoriseError, ValidRequest};
use crate::oauth::consent;
use crate::oauth::sso::{self, SsoSession};
use crate::oauth::users::LoginError;
use crate::settings::User;
use crate::store::StoreError;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

const LOGIN_CSRF_FIELD: &str = "login_csrf";
const CONSENT_CSRF_FIELD: &str = "csrf";
/// The authorization request parameters carried through the forms.
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
    "max_age",
    "login_hint",
    "dpop_jkt",
];

pub async fn get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match browser::query_params(query.as_deref()) {
        Ok(params) => start(&state, &headers, &params).await,
        Err(e) => e.into_response(),
    }
}

pub async fn post(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match browser::form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let has = |name: &str| params.iter().any(|(k, _)| k == name);
    if has("consent") {
        consent_decision(&state, &headers, &params).await
    } else if has(LOGIN_CSRF_FIELD) || has("username") || has("password") {
        let peer = peer.map(|Extension(ConnectInfo(a))| a.ip());
        let address = client_address(&state.settings.forwarded, peer, &headers);
        login(&state, &headers, &params, address).await
    } else {
        // An authorization request sent as a form (OIDC Core §3.1.2.1 allows POST).
        start(&state, &headers, &params).await
    }
}

/// A refused authorization request: shown, or sent back to the client (never to an untrusted
/// URI).
fn error(state: &AppState, e: &AuthoriseError) -> Response {
    match e.redirect_url(&state.settings.issuer) {
        Some(url) => {
            tracing::info!(reason = %e, "authorization request refused (sent back to the client)");
            see_other(&url)
        }
        None => {
            tracing::info!(reason = %e, "authorization request refused");
            pages::error_page(StatusCode::BAD_REQUEST, &e.to_string())
        }
    }
}

/// A new authorization request: sign in (unless the browser already is, recently enough) and
/// consent (unless remembered or not needed).
async fn start(state: &AppState, headers: &HeaderMap, params: &Params) -> Response {
    let request = match authorize::validate(&state.settings, params) {
        Ok(r) => r,
        Err(e) => return error(state, &e),
    };
    let now = unix_now();
    let session = match current_session(state, headers, now).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    // max_age=0 is prompt=login (OIDC Core §3.1.2.1).
    let fresh_enough = |s: &SsoSession| {
        request
            .max_age
            .is_none_or(|max| max > 0 && now - s.auth_time <= max)
    };
    match session {
        Some((s, user)) if !request.prompt.login && fresh_enough(&s) => {
            proceed(state, headers, &request, params, &s, &user, now).await
        }
        _ if request.prompt.none => error(
            state,
            &request.error("login_required", "the user must sign in"),
        ),
        _ => {
            let hint = single(params, "login_hint").ok().flatten().unwrap_or("");
            login_page(state, headers, &request, params, hint, None).await
        }
    }
}

/// The user of `session` is signed in: ask for consent if needed, else answer the client.
async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    request: &ValidRequest,
    params: &Params,
    session: &SsoSession,
    user: &User,
    now: i64,
) -> Response {
    let Some(client) = state.settings.client(&request.client_id) else {
        return pages::error_page(StatusCode::BAD_REQUEST, "unknown client");
    };
    let remembered = if client.skip_consent || request.prompt.consent {
        !request.prompt.consent
    } else {
        match consent::covers(&*state.store, &session.sub, &client.id, &request.scopes).await {
            Ok(c) => c,
            Err(e) => return server_error("reading consent", &e),
        }
    };
    if !remembered {
        if request.prompt.none {
            return error(
                state,
                &request.error("consent_required", "the user must approve this client"),
            );
        }
        return consent_page(state, headers, request, params, user).await;
    }
    answer(state, request, session, now).await
}

/// Sends the user agent to the client with a code or a token.
async fn answer(
    state: &AppState,
    request: &ValidRequest,
    session: &SsoSession,
    now: i64,
) -> Response {
    let keys = state.keys();
    match authorize::respond(&state.grant_context(&keys), request, session, now).await {
        Ok(url) => {
            if request.response_type == authorize::ResponseType::Token {
                state.metrics.issued("implicit");
            }
            tracing::info!(client = %request.client_id, response_type = ?request.response_type, "authorization granted");
            see_other(&url)
        }
        Err(e) => server_error("answering an authorization request", &e),
    }
}

async fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    request: &ValidRequest,
    params: &Params,
    username: &str,
    error: Option<&str>,
) -> Response {
    let carried = carried(params, CARRIED);
    form_page(state, headers, Purpose::Login, |csrf| {
        pages::render(
            StatusCode::OK,
            &LoginPage {
                action: AUTHORISE_PATH,
                client_id: &request.client_id,
                scopes: &request.scopes,
                params: &carried,
                csrf,
                username,
                error,
            },
        )
    })
    .await
}

async fn consent_page(
    state: &AppState,
    headers: &HeaderMap,
    request: &ValidRequest,
    params: &Params,
    user: &User,
) -> Response {
    let carried = carried(params, CARRIED);
    form_page(state, headers, Purpose::Consent, |csrf| {
        pages::render(
            StatusCode::OK,
            &ConsentPage {
                action: AUTHORISE_PATH,
                client_id: &request.client_id,
                username: &user.username,
                scopes: &request.scopes,
                params: &carried,
                csrf,
            },
        )
    })
    .await
}

#[tracing::instrument(skip_all)]
async fn login(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    address: Option<IpAddr>,
) -> Response {
    let (Ok(csrf), Ok(username), Ok(password)) = (
        single(params, LOGIN_CSRF_FIELD),
        single(params, "username"),
        single(params, "password"),
    ) else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    let request = match authorize::validate(&state.settings, params) {
        Ok(r) => r,
        Err(e) => return error(state, &e),
    };
    if let Err(e) =
        check_form_token(state, headers, csrf, Purpose::Login, pages::SIGN_IN_ERROR).await
    {
        return e.into_response();
    }
    let username = username.unwrap_or("");
    let password = password.unwrap_or("");
    let now = unix_now();
    if username.is_empty() || password.is_empty() || username.len() > 256 {
        return login_page(
            state,
            headers,
            &request,
            params,
            "",
            Some("Enter your username and password."),
        )
        .await;
    }
    let verified = state
        .passwords
        .verify(&state.settings.users, username, password, address, now)
        .await;
    let user = match verified {
        Ok(user) => user,
        Err(LoginError::Rejected) => {
            return login_page(
                state,
                headers,
                &request,
                params,
                username,
                Some("Invalid username or password."),
            )
            .await;
        }
        Err(LoginError::Server(e)) => return server_error("login", &e),
    };
    let amr = ["pwd".to_owned()];
    let previous = match current_session(state, headers, now).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let (session, cookie) = match signed_in(state, previous, &user, &amr, now).await {
        Ok(s) => s,
        Err(e) => return server_error("starting a session", &e),
    };
    tracing::info!(client = %request.client_id, "user signed in");
    let mut res = proceed(state, headers, &request, params, &session, &user, now).await;
    if let Some(value) = cookie {
        browser::set_session_cookie(state, &mut res, &value);
    }
    res
}

/// The single-sign-on session after `user` signed in: the browser's current one when it is the
/// same user's (re-authentication keeps it, so logout still ends everything it gave), else a
/// new one (and a cookie to set); another user's session in this browser is ended.
async fn signed_in(
    state: &AppState,
    previous: Option<(SsoSession, User)>,
    user: &User,
    amr: &[String],
    now: i64,
) -> Result<(SsoSession, Option<String>), StoreError> {
    if let Some((s, _)) = previous {
        if s.sub == user.sub {
            return Ok((
                sso::reauthenticated(&*state.store, &s, amr, now).await?,
                None,
            ));
        }
        let feed_exp = now + state.settings.max_access_token_ttl_seconds();
        sso::end(&*state.store, &s.id, feed_exp, now).await?;
    }
    let ttl = i64::try_from(state.settings.sso_session_ttl_seconds).unwrap_or(3600);
    let (value, session) = sso::create(&*state.store, &user.sub, amr, now, ttl).await?;
    Ok((session, Some(value)))
}

async fn consent_decision(state: &AppState, headers: &HeaderMap, params: &Params) -> Response {
    let (Ok(csrf), Ok(decision)) = (
        single(params, CONSENT_CSRF_FIELD),
        single(params, "consent"),
    ) else {
        return pages::error_page(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    let request = match authorize::validate(&state.settings, params) {
        Ok(r) => r,
        Err(e) => return error(state, &e),
    };
    if let Err(e) =
        check_form_token(state, headers, csrf, Purpose::Consent, pages::SIGN_IN_ERROR).await
    {
        return e.into_response();
    }
    let now = unix_now();
    let Some((session, _user)) = (match current_session(state, headers, now).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    }) else {
        // Signed out (or the session expired) while the consent page was open.
        return login_page(
            state,
            headers,
            &request,
            params,
            "",
            Some("Please sign in again."),
        )
        .await;
    };
    match decision {
        Some("allow") => {
            if let Err(e) = consent::record(
                &*state.store,
                &session.sub,
                &request.client_id,
                &request.scopes,
                now,
            )
            .await
            {
                return server_error("recording consent", &e);
            }
            answer(state, &request, &session, now).await
        }
        Some("deny") => {
            tracing::info!(client = %request.client_id, "the user denied consent");
            error(
                state,
                &request.error("access_denied", "the user denied the request"),
            )
        }
        _ => pages::error_page(StatusCode::BAD_REQUEST, "The form is malformed."),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn carried_parameters_do_not_include_credentials() {
        for secret in ["password", "username", "login_csrf", "csrf", "consent"] {
            assert!(!super::CARRIED.contains(&secret), "{secret}");
        }
    }
}
