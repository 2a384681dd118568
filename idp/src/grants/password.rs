//! The resource owner password credentials grant (RFC 6749 §4.3): only for confidential clients
//! explicitly allowed to use it; argon2 verification on a bounded pool; per-user and per-IP
//! lockout; the same answer whether the user exists or not.

use super::user_tokens::{self, Origin};
use crate::client_auth::Authenticated;
use crate::error::OAuthError;
use crate::form::Form;
use crate::grants::grant_scopes;
use crate::settings::GrantType;
use crate::state::AppState;
use argon2::{Argon2, PasswordVerifier};
use serde_json::Value;
use std::net::IpAddr;

/// A valid argon2 hash of a random password, verified when the user does not exist so that an
/// unknown username takes as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$wshfcGF5bL78iHt5Y1bwpA$Vab0386E/SrnsVKAO3IQN3O8KxqnVLNQTJdQSZlmpj0";

fn invalid_credentials() -> OAuthError {
    OAuthError::InvalidGrant("invalid username or password".into())
}

pub async fn grant(
    state: &AppState,
    auth: &Authenticated<'_>,
    form: &Form,
    peer: Option<IpAddr>,
    now: i64,
) -> Result<Value, OAuthError> {
    let client = auth.client;
    if !auth.confidential || !client.grant_types.contains(&GrantType::Password) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use the password grant".into(),
        ));
    }
    let username = form.require("username")?;
    let password = form.require("password")?;
    let scopes = grant_scopes(client, form.get("scope"))?;
    let keys = [
        format!("user:{username}"),
        format!("ip:{}", peer.map_or("unknown".into(), |p| p.to_string())),
    ];
    if state.lockout.is_locked(&keys, now) {
        // Same answer as a wrong password: a locked account is not confirmed to exist.
        return Err(invalid_credentials());
    }
    let user = state.settings.user(username).cloned();
    let hash = user
        .as_ref()
        .map_or(DUMMY_HASH.to_owned(), |u| u.password_argon2.clone());
    let password = password.to_owned();
    let permit = state
        .hashing
        .acquire()
        .await
        .map_err(|_| OAuthError::Server("hashing pool closed".into()))?;
    let verified = tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .map_err(|e| OAuthError::Server(format!("hashing task: {e}")))?;
    drop(permit);
    let Some(user) = user.filter(|_| verified) else {
        state.lockout.record_failure(&keys, now);
        tracing::info!(client = %client.id, "password grant failed");
        return Err(invalid_credentials());
    };
    state.lockout.record_success(&keys[0]);
    let mut tx = state.pool.begin().await?;
    let issued = user_tokens::issue(
        state,
        &mut tx,
        client,
        &user.sub,
        &scopes,
        Origin::NewSession {
            amr: &["pwd".to_owned()],
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(issued.body)
}
