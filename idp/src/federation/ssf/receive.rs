//! One SET received (pushed or polled): validated ([`super::set`]), its effects planned
//! ([`super::events`]), then its `jti` record and every cut-off or denial stored in **one
//! transaction** — the caller acknowledges (push `202`, poll `ack`) only after this returns
//! `Ok`. A redelivery of a SET already stored is acknowledged again and applied no second time;
//! a refused SET stores nothing.

use super::events::{Effect, plan};
use super::set::{SetError, SetPolicy, ValidSet, validate};
use super::{Count, MIN_KEY_REFETCH, StreamRuntime};
use crate::settings::FederatedIssuer;
use crate::store::{NewCutoff, SetReceipt, Store, StoreError};
use sha2::{Digest, Sha256};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error(transparent)]
    Invalid(#[from] SetError),
    /// Nothing was stored: not acknowledged, the transmitter delivers it again.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transmitter's keys are not known yet (this hub has not read its configuration
    /// document and JWKS, e.g. a replica still setting the stream up): not acknowledged and not
    /// refused — a push gets 503, so the transmitter delivers it again.
    #[error("the transmitter's keys are not loaded yet")]
    NotReady,
}

/// What became of an accepted SET (acknowledged either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored now, with this many feed changes (cut-offs and denials).
    Stored { applied: usize },
    /// Stored before (the same SET): nothing applied again.
    Redelivered,
}

/// Validates `token` against the transmitter's keys; a key it names that is not among them has
/// the keys read again (at most once per [`MIN_KEY_REFETCH`], RFC 8935 receivers on key
/// rotation) before it is refused. Whatever fetch installed new keys meanwhile — this one, the
/// stream's set-up, or another SET's — the SET is checked again against the newest set: a
/// fetch already in flight makes ours wait for it and skip its own, so its keys count too.
async fn check_with_fresh_keys(
    stream: &StreamRuntime,
    token: &str,
    policy: &SetPolicy<'_>,
    now: i64,
) -> Result<ValidSet, ReceiveError> {
    let seen = stream.keys();
    let checked = validate(token, &seen, policy, now);
    if checked != Err(SetError::UnknownKey) {
        return Ok(checked?);
    }
    stream.refresh_keys(MIN_KEY_REFETCH).await;
    let latest = stream.keys();
    if latest.is_empty() {
        return Err(ReceiveError::NotReady);
    }
    if Arc::ptr_eq(&seen, &latest) {
        return Ok(checked?);
    }
    Ok(validate(token, &latest, policy, now)?)
}

/// Receives `token` for `stream`; `delivered_as`: the `jti` a poll answer filed it under.
pub async fn receive(
    stream: &StreamRuntime,
    store: &dyn Store,
    issuers: &[FederatedIssuer],
    token: &str,
    delivered_as: Option<&str>,
    now: i64,
    count: &Count,
) -> Result<Received, ReceiveError> {
    let config = &stream.config;
    let policy = SetPolicy {
        transmitter: &config.transmitter,
        audience: &config.audience,
        leeway_seconds: config.leeway_seconds,
        max_age_seconds: config.set_max_age_seconds,
    };
    let set = check_with_fresh_keys(stream, token, &policy, now).await?;
    if delivered_as.is_some_and(|j| j != set.jti) {
        return Err(SetError::JtiMismatch.into());
    }
    let effects = plan(config, &set, now)?;
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let keep_until = set
        .iat
        .saturating_add(i64::try_from(config.set_max_age_seconds).unwrap_or(i64::MAX))
        .saturating_add(i64::try_from(config.leeway_seconds).unwrap_or(0))
        .saturating_add(1);
    let mut tx = store.begin().await?;
    match tx
        .record_received_set(&config.transmitter, &set.jti, &digest, keep_until, now)
        .await?
    {
        SetReceipt::New => {}
        SetReceipt::Redelivered => return Ok(Received::Redelivered),
        SetReceipt::JtiReused => return Err(SetError::JtiReused.into()),
    }
    let lifetime = |iss: &str| {
        issuers.iter().find(|i| i.issuer == iss).map_or(0, |i| {
            i64::try_from(i.max_token_lifetime_seconds).unwrap_or(i64::MAX)
        })
    };
    let mut applied = 0;
    for effect in &effects {
        match effect {
            Effect::Cutoff {
                iss,
                key,
                value,
                at,
            } => {
                tx.record_cutoff(&NewCutoff {
                    iss,
                    key: *key,
                    value,
                    cutoff: *at,
                    exp: at.saturating_add(lifetime(iss)),
                    now,
                })
                .await?;
                applied += 1;
            }
            Effect::DenyJti { iss, jti } => {
                tx.deny_federated_jti(jti, now.saturating_add(lifetime(iss)), now)
                    .await?;
                applied += 1;
            }
            Effect::Verification { .. } | Effect::StreamUpdated { .. } | Effect::Ignored(_) => {}
        }
    }
    tx.commit().await?;
    // Stored: now the notices (after the commit, so a notice is never acted on for a SET
    // that was not stored).
    for effect in &effects {
        match effect {
            Effect::Ignored(why) => {
                count("ssf_event", why);
                tracing::info!(stream = %config.name, jti = %set.jti, why, "SET event acknowledged and ignored");
            }
            Effect::Verification { state } => stream.verified(state.as_deref(), count),
            Effect::StreamUpdated { status, reason } => {
                stream.status_changed(status, reason.as_deref(), count);
            }
            Effect::Cutoff { .. } | Effect::DenyJti { .. } => {}
        }
    }
    tracing::info!(stream = %config.name, jti = %set.jti, applied, "SET stored");
    Ok(Received::Stored { applied })
}
