//! Receiving a back-channel logout token (OIDC Back-Channel Logout 1.0) for a federated issuer,
//! posted by the provider or forwarded by a gateway — validated here again either way, so a
//! gateway cannot assert a logout. The result is a cut-off at the token's `iat`, stored with the
//! token's `jti` (replay store) in one transaction: nothing is acknowledged before it is durable,
//! and a refused or failed request stores nothing.

use super::{Hub, MIN_REFETCH_INTERVAL};
use crate::store::{CutoffKey, NewCutoff, Store, StoreError};
use filter::logout::backchannel::{
    LogoutEvent, LogoutTokenError, LogoutTokenPolicy, logout_token_from_form, unverified_issuer,
    validate_logout_token,
};

#[derive(Debug, thiserror::Error)]
pub enum LogoutFailure {
    #[error(transparent)]
    Invalid(#[from] LogoutTokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates the form `body` of a back-channel logout request and stores its cut-off.
pub async fn receive(
    hub: &Hub,
    store: &dyn Store,
    body: &[u8],
    now: i64,
) -> Result<LogoutEvent, LogoutFailure> {
    let token = logout_token_from_form(body)?;
    let issuer = match unverified_issuer(&token) {
        Some(iss) if hub.issuer(&iss).is_some() => iss,
        Some(_) => return Err(LogoutTokenError::WrongIssuer.into()),
        None => {
            return Err(LogoutTokenError::Malformed(
                "the logout token is not a JWS naming its issuer",
            )
            .into());
        }
    };
    let config = hub.issuer(&issuer).ok_or(LogoutTokenError::WrongIssuer)?;
    let policy = LogoutTokenPolicy {
        issuer: &config.issuer,
        audiences: &config.backchannel_audiences,
        algorithms: &config.algorithms,
        leeway_seconds: config.leeway_seconds,
        max_age_seconds: config.logout_token_max_age_seconds,
    };
    let now_u = u64::try_from(now).unwrap_or(0);
    let mut event = validate_logout_token(&policy, &hub.keys(&issuer), &token, now_u, None);
    if matches!(
        event,
        Err(LogoutTokenError::UnknownKey | LogoutTokenError::NoKeys)
    ) && hub.refresh(&issuer, MIN_REFETCH_INTERVAL).await
    {
        event = validate_logout_token(&policy, &hub.keys(&issuer), &token, now_u, None);
    }
    let event = event?;
    // The token could be accepted until the earlier of its iat + max age and its exp (each
    // with the leeway): its jti is remembered that long.
    let leeway = config.leeway_seconds;
    let until_age = event
        .iat
        .saturating_add(config.logout_token_max_age_seconds)
        .saturating_add(leeway);
    let until = event
        .exp
        .map_or(until_age, |exp| exp.saturating_add(leeway).min(until_age))
        .saturating_add(1);
    let iat = i64::try_from(event.iat).map_err(|_| LogoutTokenError::Stale)?;
    let (key, value) = match (&event.sid, &event.sub) {
        (Some(sid), _) => (CutoffKey::Sid, sid),
        (None, Some(sub)) => (CutoffKey::Sub, sub),
        (None, None) => return Err(LogoutTokenError::MissingSubject.into()),
    };
    let lifetime = i64::try_from(config.max_token_lifetime_seconds).unwrap_or(i64::MAX);
    let mut tx = store.begin().await?;
    let first = tx
        .record_logout_jti(
            &issuer,
            &event.jti,
            i64::try_from(until).unwrap_or(i64::MAX),
            now,
        )
        .await?;
    if !first {
        return Err(LogoutTokenError::Replayed.into());
    }
    tx.record_cutoff(&NewCutoff {
        iss: &issuer,
        key,
        value,
        cutoff: iat,
        exp: iat.saturating_add(lifetime),
        now,
    })
    .await?;
    tx.commit().await?;
    Ok(event)
}
