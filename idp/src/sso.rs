//! The browser's single-sign-on session at the IDP: a random cookie value, stored only as its
//! SHA-256 digest. Token sessions (`sid`) started from it are linked to it, so ending it ends
//! every one of them (their refresh tokens stop working and their `sid`s enter the revocation
//! feed).

use crate::store;
use crate::tokens::random_id;
use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool};

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
pub async fn find(
    pool: &SqlitePool,
    value: &str,
    now: i64,
) -> Result<Option<SsoSession>, sqlx::Error> {
    let id = cookie_digest(value);
    let row = sqlx::query(
        "SELECT sub, auth_time, amr FROM sso_sessions WHERE id = ? AND ended_at IS NULL AND expires_at > ?",
    )
    .bind(&id)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| SsoSession {
        id,
        sub: r.get("sub"),
        auth_time: r.get("auth_time"),
        amr: split_amr(r.get("amr")),
    }))
}

/// The single-sign-on session a token session belongs to, if it came from one.
pub async fn of_token_session(pool: &SqlitePool, sid: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar::<_, Option<String>>("SELECT sso_id FROM sessions WHERE sid = ?")
        .bind(sid)
        .fetch_optional(pool)
        .await
        .map(Option::flatten)
}

/// Starts a session for `sub` after a login at `now`; gives the cookie value and the session.
pub async fn create(
    pool: &SqlitePool,
    sub: &str,
    amr: &[String],
    now: i64,
    ttl: i64,
) -> Result<(String, SsoSession), sqlx::Error> {
    let value = format!("{}{}", random_id(), random_id());
    let session = SsoSession {
        id: cookie_digest(&value),
        sub: sub.to_owned(),
        auth_time: now,
        amr: amr.to_vec(),
    };
    sqlx::query(
        "INSERT INTO sso_sessions (id, sub, auth_time, amr, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&session.id)
    .bind(sub)
    .bind(now)
    .bind(amr.join(" "))
    .bind(now)
    .bind(now + ttl)
    .execute(pool)
    .await?;
    Ok((value, session))
}

/// The same user signed in again (`prompt=login`, `max_age`): the session is kept, so logging
/// out still ends the tokens it gave before, with the new authentication time.
pub async fn reauthenticated(
    pool: &SqlitePool,
    session: &SsoSession,
    amr: &[String],
    now: i64,
) -> Result<SsoSession, sqlx::Error> {
    sqlx::query("UPDATE sso_sessions SET auth_time = ?, amr = ? WHERE id = ?")
        .bind(now)
        .bind(amr.join(" "))
        .bind(&session.id)
        .execute(pool)
        .await?;
    Ok(SsoSession {
        auth_time: now,
        amr: amr.to_vec(),
        ..session.clone()
    })
}

/// Ends the session `id` and every token session started from it, in one transaction.
/// `feed_exp` bounds how long their `sid`s stay in the revocation feed. Idempotent.
pub async fn end(
    pool: &SqlitePool,
    id: &str,
    feed_exp: i64,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let mut tx = crate::db::begin_write(pool).await?;
    sqlx::query("UPDATE sso_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let sids: Vec<String> =
        sqlx::query_scalar("SELECT sid FROM sessions WHERE sso_id = ? AND ended_at IS NULL")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    for sid in &sids {
        store::end_session(&mut tx, sid, feed_exp, now).await?;
    }
    tx.commit().await?;
    Ok(sids.len())
}
