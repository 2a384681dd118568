//! `GET|POST /oauth2/userinfo` (OIDC Core §5.3): the signed-in user's claims, for an access token
//! with the `openid` scope. Errors are RFC 6750's, in `WWW-Authenticate`.

use crate::http::state::AppState;
use crate::oauth::tokens;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

fn challenge(status: StatusCode, error: Option<(&str, &str)>) -> Response {
    let value = match error {
        Some((code, description)) => {
            format!(
                "Bearer realm=\"userinfo\", error=\"{code}\", error_description=\"{description}\""
            )
        }
        None => "Bearer realm=\"userinfo\"".to_owned(),
    };
    let mut res = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// The bearer token of the `Authorization` header (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ()> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    let text = value.to_str().map_err(|_| ())?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(()),
    }
}

pub async fn userinfo(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let token = match bearer(&headers) {
        Ok(Some(t)) => t,
        Ok(None) => return challenge(StatusCode::UNAUTHORIZED, None),
        Err(()) => {
            return challenge(
                StatusCode::BAD_REQUEST,
                Some(("invalid_request", "malformed Authorization header")),
            );
        }
    };
    let invalid = || {
        challenge(
            StatusCode::UNAUTHORIZED,
            Some(("invalid_token", "the access token is not valid")),
        )
    };
    let Some(claims) = tokens::verify_own(&state.keys(), &state.settings.issuer, token) else {
        return invalid();
    };
    match state
        .store
        .is_revoked(&claims.jti, claims.sid.as_deref())
        .await
    {
        Ok(false) => {}
        Ok(true) => return invalid(),
        Err(e) => {
            tracing::error!(error = %e, "userinfo: reading revocations failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    let scopes: Vec<&str> = claims.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            Some(("insufficient_scope", "the openid scope is required")),
        );
    }
    let Some(user) = state.settings.user_by_sub(&claims.sub) else {
        // A client's own token (client_credentials) has no user.
        return invalid();
    };
    let mut body = json!({ "sub": user.sub });
    if scopes.contains(&"profile") {
        body["preferred_username"] = user.username.clone().into();
        if let Some(name) = &user.name {
            body["name"] = name.clone().into();
        }
    }
    if let Some(email) = user.email.as_ref().filter(|_| scopes.contains(&"email")) {
        body["email"] = email.clone().into();
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
