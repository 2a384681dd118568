//! `POST /oauth2/introspect` (RFC 7662), for authenticated confidential clients.

use crate::http::form;
use crate::http::state::AppState;
use crate::oauth::client_auth::authenticate;
use crate::oauth::error::OAuthError;
use crate::oauth::tokens;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

pub async fn introspect(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(body) => ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, OAuthError> {
    let form = form::parse(headers, body)?;
    // The client first (RFC 7662 §2.1); `token_type_hint`, known or not, is ignored.
    let auth = authenticate(&state.settings, headers, &form)?;
    if !auth.confidential {
        return Err(OAuthError::InvalidClient);
    }
    let token = form.require("token")?;
    let inactive = json!({"active": false});
    let Some(c) = tokens::verify_own(&state.keys(), &state.settings.issuer, token) else {
        return Ok(inactive);
    };
    if state.store.is_revoked(&c.jti, c.sid.as_deref()).await? {
        return Ok(inactive);
    }
    // Only the token's own client or a gateway learns about a token.
    if c.client_id != auth.client.id && !auth.client.gateway {
        return Ok(inactive);
    }
    let mut body = json!({
        "active": true, "token_type": c.token_type(), "client_id": c.client_id, "sub": c.sub,
        "iss": c.iss, "aud": c.aud, "exp": c.exp, "iat": c.iat, "nbf": c.nbf, "jti": c.jti,
        "scope": c.scope,
    });
    if let Some(sid) = c.sid {
        body["sid"] = sid.into();
    }
    // A DPoP-bound token: its key's thumbprint (RFC 9449 §6.2), for a resource server that
    // introspects instead of reading the JWT.
    if let Some(cnf) = c.cnf {
        body["cnf"] = json!({"jkt": cnf.jkt});
    }
    Ok(body)
}
