//! `GET|POST /oauth2/logout`: OpenID Connect RP-Initiated Logout 1.0. Ends the browser's
//! single-sign-on session and every token session started from it (their `sid`s go to the
//! revocation feed, so every gateway refuses their access tokens).
//!
//! Parameters: `id_token_hint` (an ID token of ours, expired ones accepted), `client_id`,
//! `post_logout_redirect_uri` (must be registered for the client, exact match, else an error
//! page and no redirect), `state` (echoed). When the request cannot be tied to the browser's
//! session (no hint, or a hint of another session) the user is asked to confirm, with a
//! CSRF-protected form; confirming ends the browser's session and the hint's.

use super::LOGOUT_PATH;
use super::browser::{
    self, BrowserError, Params, carried, check_form_token, form_page, see_other, server_error,
    single,
};
use crate::http::csrf::Purpose;
use crate::http::pages::{self, LogoutPage, SignedOutPage};
use crate::http::state::{AppState, unix_now};
use crate::oauth::id_token::{self, IdClaims};
use crate::oauth::sso;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

const CARRIED: &[&str] = &[
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
];

pub async fn get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match browser::query_params(query.as_deref()) {
        Ok(params) => logout(&state, &headers, &params, false).await,
        Err(e) => e.into_response(),
    }
}

pub async fn post(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match browser::form_params(&headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let confirmed = params.iter().any(|(k, v)| k == "confirm" && v == "yes");
    if confirmed {
        let field = single(&params, "csrf").ok().flatten();
        if let Err(e) = check_form_token(
            &state,
            &headers,
            field,
            Purpose::Logout,
            pages::SIGN_OUT_ERROR,
        )
        .await
        {
            return e.into_response();
        }
    }
    logout(&state, &headers, &params, confirmed).await
}

/// A checked logout request.
struct Request {
    hint: Option<IdClaims>,
    /// Where to go afterwards, with `state`.
    redirect: Option<String>,
}

fn bad(message: &str) -> BrowserError {
    tracing::info!(reason = message, "logout request refused");
    BrowserError::BadRequest {
        heading: Some(pages::SIGN_OUT_ERROR),
        message: message.to_owned(),
    }
}

fn check(state: &AppState, params: &Params) -> Result<Request, BrowserError> {
    let get = |name: &str| {
        single(params, name)
            .map(|v| v.filter(|v| !v.is_empty()))
            .map_err(|()| bad(&format!("{name} is repeated")))
    };
    let hint = match get("id_token_hint")? {
        None => None,
        Some(t) => Some(
            id_token::read_hint(&state.keys(), &state.settings.issuer, t)
                .ok_or_else(|| bad("id_token_hint is not an ID token issued here"))?,
        ),
    };
    let client_id = match (get("client_id")?, &hint) {
        (Some(c), Some(h)) if c != h.aud => {
            return Err(bad("client_id does not match the id_token_hint"));
        }
        (Some(c), _) => Some(c.to_owned()),
        (None, Some(h)) => Some(h.aud.clone()),
        (None, None) => None,
    };
    let redirect = match get("post_logout_redirect_uri")? {
        None => None,
        Some(uri) => {
            let client = client_id
                .as_deref()
                .and_then(|id| state.settings.client(id))
                .ok_or_else(|| {
                    bad("post_logout_redirect_uri needs client_id or id_token_hint of a known client")
                })?;
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(bad(
                    "post_logout_redirect_uri is not registered for this client",
                ));
            }
            let mut url = url::Url::parse(uri).map_err(|_| bad("bad post_logout_redirect_uri"))?;
            if let Some(s) = get("state")? {
                url.query_pairs_mut().append_pair("state", s);
            }
            Some(url.into())
        }
    };
    Ok(Request { hint, redirect })
}

async fn logout(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    confirmed: bool,
) -> Response {
    let request = match check(state, params) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let now = unix_now();
    let current = match browser::current_session(state, headers, now).await {
        Ok(s) => s.map(|(s, _)| s),
        Err(e) => return e.into_response(),
    };
    let hint_sso = match &request.hint {
        None => None,
        Some(h) => match sso::of_token_session(&*state.store, &h.sid).await {
            Ok(id) => id,
            Err(e) => return server_error("reading a session", &e),
        },
    };
    let tied = matches!((&current, &hint_sso), (Some(c), Some(h)) if c.id == *h);
    if !tied && !confirmed {
        return confirmation_page(state, headers, params).await;
    }
    let feed_exp = now + state.settings.max_access_token_ttl_seconds();
    let mut ended = 0;
    let ids = current.iter().map(|c| c.id.clone()).chain(hint_sso);
    for id in ids {
        match sso::end(&*state.store, &id, feed_exp, now).await {
            Ok(n) => ended += n,
            Err(e) => return server_error("ending a session", &e),
        }
    }
    tracing::info!(token_sessions = ended, "signed out");
    let mut res = match &request.redirect {
        Some(url) => see_other(url),
        None => pages::render(StatusCode::OK, &SignedOutPage),
    };
    browser::clear_session_cookie(state, &mut res);
    res
}

async fn confirmation_page(state: &AppState, headers: &HeaderMap, params: &Params) -> Response {
    let carried = carried(params, CARRIED);
    form_page(state, headers, Purpose::Logout, |csrf| {
        pages::render(
            StatusCode::OK,
            &LogoutPage {
                action: LOGOUT_PATH,
                params: &carried,
                csrf,
            },
        )
    })
    .await
}
