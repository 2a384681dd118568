//! The browser's single-sign-on session at the IDP: a random cookie value, stored only as its
//! SHA-256 digest. Token sessions (`sid`) started from it are linked to it, so ending it ends
//! every one of them (their refresh tokens stop working and their `sid`s enter the revocation
//! feed).

use crate::oauth::tokens::random_id;
use crate::store::{NewSsoSession, Store, StoreResult};
use sha2::{Digest, Sha256};

/// A live single-sign-on session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSession {
    /// Hex SHA-256 of the cookie value.
    pub id: String,
    pub sub: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
}

pub fn cookie_digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn split_amr(amr: &str) -> Vec<String> {
    amr.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The live session the cookie `value` names, if any.
pub async fn find(store: &dyn Store, value: &str, now: i64) -> StoreResult<Option<SsoSession>> {
    let id = cookie_digest(value);
    let record = store.find_sso_session(&id, now).await?;
    Ok(record.map(|r| SsoSession {
        id,
        sub: r.sub,
        auth_time: r.auth_time,
        amr: split_amr(&r.amr),
    }))
}

/// The single-sign-on session a token session belongs to, if it came from one.
pub async fn of_token_session(store: &dyn Store, sid: &str) -> StoreResult<Option<String>> {
    store.sso_of_token_session(sid).await
}

/// Starts a session for `sub` after a login at `now`; gives the cookie value and the session.
pub async fn create(
    store: &dyn Store,
    sub: &str,
    amr: &[String],
    now: i64,
    ttl: i64,
) -> StoreResult<(String, SsoSession)> {
    let value = format!("{}{}", random_id(), random_id());
    let session = SsoSession {
        id: cookie_digest(&value),
        sub: sub.to_owned(),
        auth_time: now,
        amr: amr.to_vec(),
    };
    store
        .insert_sso_session(&NewSsoSession {
            id: &session.id,
            sub,
            auth_time: now,
            amr: &amr.join(" "),
            now,
            expires_at: now + ttl,
        })
        .await?;
    Ok((value, session))
}

/// The same user signed in again (`prompt=login`, `max_age`): the session is kept, so logging
/// out still ends the tokens it gave before, with the new authentication time.
pub async fn reauthenticated(
    store: &dyn Store,
    session: &SsoSession,
    amr: &[String],
    now: i64,
) -> StoreResult<SsoSession> {
    store
        .reauthenticate_sso_session(&session.id, now, &amr.join(" "))
        .await?;
    Ok(SsoSession {
        auth_time: now,
        amr: amr.to_vec(),
        ..session.clone()
    })
}

/// Ends the session `id` and every token session started from it, in one transaction.
/// `feed_exp` bounds how long their `sid`s stay in the revocation feed. Idempotent.
pub async fn end(store: &dyn Store, id: &str, feed_exp: i64, now: i64) -> StoreResult<usize> {
    let mut tx = store.begin().await?;
    let sids = tx.end_sso_session(id, now).await?;
    for sid in &sids {
        tx.end_session(sid, feed_exp, now).await?;
    }
    tx.commit().await?;
    Ok(sids.len())
}
