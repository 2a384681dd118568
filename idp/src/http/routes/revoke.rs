//! `POST /oauth2/revoke` (RFC 7009). A client may revoke its own tokens; a gateway client any
//! token (it revokes on the user's behalf at logout). Revoking a token with a session ends the
//! session. Unknown, invalid or expired tokens are answered 200, as the RFC requires.

use crate::http::form;
use crate::http::state::{AppState, unix_now};
use crate::oauth::client_auth::authenticate;
use crate::oauth::error::OAuthError;
use crate::oauth::tokens;
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
    let form = form::parse(headers, body)?;
    // The client first (RFC 7009 §2.1): a request without credentials is `invalid_client`
    // whatever else is wrong with it.
    let auth = authenticate(&state.settings, headers, &form)?;
    let token = form.require("token")?;
    // `token_type_hint` is only a hint: every token type is searched whatever it says, and an
    // unknown value is ignored (RFC 7009 §2.1).
    let Some(claims) = tokens::verify_own(&state.keys(), &state.settings.issuer, token) else {
        // Not one of our access tokens: perhaps a refresh token (revoking it ends its session).
        return revoke_refresh_token(state, auth.client, token).await;
    };
    if claims.client_id != auth.client.id && !auth.client.gateway {
        // RFC 7009 §2.1: the token was not issued to this client. Answer as for an unknown token.
        tracing::info!(client = %auth.client.id, "refused to revoke another client's token");
        return Ok(());
    }
    let now = unix_now();
    // A session's tokens all expire within the longest access-token lifetime from now.
    let session_exp = now + state.settings.max_access_token_ttl_seconds();
    let mut tx = state.store.begin().await?;
    if claims.sid.is_none() {
        // A client's token for itself is not recorded as issued: its event is written here.
        tx.client_token_revoked(&claims.jti, &claims.sub, &claims.client_id, now)
            .await?;
    }
    tx.revoke_jti(&claims.jti, claims.exp, now).await?;
    if let Some(sid) = &claims.sid {
        tx.end_session(sid, session_exp, now).await?;
    }
    tx.commit().await?;
    tracing::info!(client = %auth.client.id, session = claims.sid.is_some(), "token revoked");
    Ok(())
}

async fn revoke_refresh_token(
    state: &AppState,
    client: &crate::settings::Client,
    token: &str,
) -> Result<(), OAuthError> {
    let hash = crate::oauth::grants::user_tokens::refresh_hash(token);
    let mut tx = state.store.begin().await?;
    let Some(stored) = tx.find_refresh_token(&hash).await? else {
        return Ok(()); // unknown: nothing to do (RFC 7009 §2.2)
    };
    if stored.client_id != client.id && !client.gateway {
        return Ok(());
    }
    let now = unix_now();
    tx.end_session(&stored.sid, stored.session_expires_at.max(now), now)
        .await?;
    tx.commit().await?;
    tracing::info!(client = %client.id, "refresh token revoked; session ended");
    Ok(())
}
