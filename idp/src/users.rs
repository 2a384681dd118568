//! Verifying a user's password, shared by the password grant and the login form: argon2 on a
//! bounded pool of blocking threads, per-user and per-IP lockout, and the same answer (and the
//! same cost) whether the user exists, the password is wrong, or the user is locked out.

use crate::error::OAuthError;
use crate::settings::User;
use crate::state::AppState;
use argon2::{Argon2, PasswordVerifier};
use std::net::IpAddr;

/// A valid argon2 hash of a random password, verified when the user does not exist so that an
/// unknown username takes as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$wshfcGF5bL78iHt5Y1bwpA$Vab0386E/SrnsVKAO3IQN3O8KxqnVLNQTJdQSZlmpj0";

/// Why a login failed; deliberately one case for the user (`Rejected`), so no caller can tell
/// an unknown user from a wrong password or a lockout.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    Rejected,
    #[error(transparent)]
    Server(#[from] OAuthError),
}

/// The user, if `password` is theirs and neither they nor `peer` is locked out.
#[tracing::instrument(skip_all)]
pub async fn verify_password(
    state: &AppState,
    username: &str,
    password: &str,
    peer: Option<IpAddr>,
    now: i64,
) -> Result<User, LoginError> {
    let keys = [
        format!("user:{username}"),
        format!("ip:{}", peer.map_or("unknown".into(), |p| p.to_string())),
    ];
    if state.lockout.is_locked(&keys, now) {
        return Err(LoginError::Rejected);
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
    match user.filter(|_| verified) {
        Some(user) => {
            state.lockout.record_success(&keys[0]);
            Ok(user)
        }
        None => {
            state.lockout.record_failure(&keys, now);
            Err(LoginError::Rejected)
        }
    }
}
