//! `POST /oauth2/revoke` (RFC 7009). A client may revoke its own tokens; a gateway client any
//! token (it revokes on the user's behalf at logout). Revoking a token with a session ends the
//! session. Unknown, invalid or expired tokens are answered 200, as the RFC requires.

use crate::client_auth::authenticate;
use crate::error::OAuthError;
use crate::form::Form;
use crate::state::{AppState, unix_now};
use crate::{store, tokens};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let form = Form::parse(headers, body)?;
    let token = form.require("token")?;
    let auth = authenticate(&state.settings, headers, &form)?;
    match form.get("token_type_hint") {
        None | Some("access_token") | Some("refresh_token") => {}
        Some(_) => return Err(OAuthError::UnsupportedTokenType),
    }
    let Some(claims) = tokens::verify_own(&state.keys, &state.settings.issuer, token) else {
        return Ok(()); // not ours, or already expired: nothing to revoke
    };
    if claims.client_id != auth.client.id && !auth.client.gateway {
        // RFC 7009 §2.1: the token was not issued to this client. Answer as for an unknown token.
        tracing::info!(client = %auth.client.id, "refused to revoke another client's token");
        return Ok(());
    }
    let now = unix_now();
    // A session's tokens all expire within the longest access-token lifetime from now.
    let max_ttl = state
        .settings
        .clients
        .iter()
        .map(|c| c.access_token_ttl_seconds)
        .max()
        .unwrap_or(300);
    let session_exp = now + i64::try_from(max_ttl).unwrap_or(86_400);
    store::revoke_token(&state.pool, &claims, session_exp, now).await?;
    tracing::info!(client = %auth.client.id, session = claims.sid.is_some(), "token revoked");
    Ok(())
}
