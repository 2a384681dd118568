//! Storage operations on SQLite. Each function is one transaction: nothing is acknowledged to a
//! client before it is durable, and a failure leaves no partial write.

use crate::tokens::AccessClaims;
use sqlx::{Row, SqlitePool};

/// Records an issued access token (in a transaction or on its own).
pub async fn record_issued<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    c: &AccessClaims,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO issued_tokens (jti, client_id, sub, sid, scope, issued_at, exp) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&c.jti)
    .bind(&c.client_id)
    .bind(&c.sub)
    .bind(&c.sid)
    .bind(&c.scope)
    .bind(c.iat)
    .bind(c.exp)
    .execute(db)
    .await?;
    Ok(())
}

/// Revokes an access token, and its session when it has one, in one transaction. Idempotent.
pub async fn revoke_token(
    pool: &SqlitePool,
    c: &AccessClaims,
    session_exp: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_write(pool).await?;
    insert_revocation(&mut tx, "jti", &c.jti, c.exp, now).await?;
    if let Some(sid) = &c.sid {
        end_session(&mut tx, sid, session_exp, now).await?;
    }
    tx.commit().await
}

async fn insert_revocation(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    kind: &str,
    value: &str,
    exp: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    // A repeated revocation keeps its place in the feed but may extend the expiry.
    sqlx::query(
        "INSERT INTO revocations (kind, value, exp, revoked_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (kind, value) DO UPDATE SET exp = MAX(exp, excluded.exp)",
    )
    .bind(kind)
    .bind(value)
    .bind(exp)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn is_revoked(
    pool: &SqlitePool,
    jti: &str,
    sid: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM revocations WHERE (kind = 'jti' AND value = ?) OR (kind = 'sid' AND value = ?)",
    )
    .bind(jti)
    .bind(sid.unwrap_or(""))
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// One feed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub seq: i64,
    pub kind: String,
    pub value: String,
    pub exp: i64,
}

/// Live revocations after `since` (all live ones when `None`), at most `limit`, in order; and the
/// cursor to ask from next time.
pub async fn revocations_since(
    pool: &SqlitePool,
    since: Option<i64>,
    now: i64,
    limit: i64,
) -> Result<(Vec<Revocation>, i64), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, kind, value, exp FROM revocations WHERE seq > ? AND exp > ? ORDER BY seq LIMIT ?",
    )
    .bind(since.unwrap_or(0))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let entries: Vec<Revocation> = rows
        .iter()
        .map(|r| Revocation {
            seq: r.get("seq"),
            kind: r.get("kind"),
            value: r.get("value"),
            exp: r.get("exp"),
        })
        .collect();
    let cursor = match entries.last() {
        Some(last) => last.seq,
        None if (limit > 0) => {
            // Nothing live after `since`: the cursor moves to the newest entry (expired ones
            // need not be read again).
            let max: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM revocations")
                .fetch_one(pool)
                .await?;
            max.unwrap_or(0).max(since.unwrap_or(0))
        }
        None => since.unwrap_or(0),
    };
    Ok((entries, cursor))
}

/// Drops expired rows (tokens and revocations nobody can use any more).
pub async fn purge_expired(pool: &SqlitePool, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_write(pool).await?;
    sqlx::query("DELETE FROM issued_tokens WHERE exp <= ?")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// A new user session.
pub async fn create_session(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    sid: &str,
    sub: &str,
    client_id: &str,
    sso_id: Option<&str>,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (sid, sub, client_id, sso_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(sid)
    .bind(sub)
    .bind(client_id)
    .bind(sso_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub struct NewRefreshToken<'a> {
    pub hash: &'a [u8],
    pub family: &'a str,
    pub sid: &'a str,
    pub client_id: &'a str,
    pub sub: &'a str,
    pub scope: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert_refresh_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    t: &NewRefreshToken<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (hash, family, sid, client_id, sub, scope, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(t.hash)
    .bind(t.family)
    .bind(t.sid)
    .bind(t.client_id)
    .bind(t.sub)
    .bind(t.scope)
    .bind(t.now)
    .bind(t.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A stored refresh token with its session's state.
#[derive(Debug, Clone)]
pub struct StoredRefresh {
    pub family: String,
    pub sid: String,
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub expires_at: i64,
    pub used: bool,
    pub revoked: bool,
    pub session_ended: bool,
    pub session_expires_at: i64,
}

pub async fn find_refresh_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    hash: &[u8],
) -> Result<Option<StoredRefresh>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT r.family, r.sid, r.client_id, r.sub, r.scope, r.expires_at, r.used_at, r.revoked_at, s.ended_at, s.expires_at AS s_exp
         FROM refresh_tokens r JOIN sessions s ON s.sid = r.sid WHERE r.hash = ?",
    )
    .bind(hash)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| StoredRefresh {
        family: r.get("family"),
        sid: r.get("sid"),
        client_id: r.get("client_id"),
        sub: r.get("sub"),
        scope: r.get("scope"),
        expires_at: r.get("expires_at"),
        used: r.get::<Option<i64>, _>("used_at").is_some(),
        revoked: r.get::<Option<i64>, _>("revoked_at").is_some(),
        session_ended: r.get::<Option<i64>, _>("ended_at").is_some(),
        session_expires_at: r.get("s_exp"),
    }))
}

/// Marks a refresh token used; `false` if it already was (a concurrent use won).
pub async fn mark_refresh_used(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    hash: &[u8],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL")
            .bind(now)
            .bind(hash)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a session: no refresh token of it works any more, and its `sid` enters the revocation
/// feed (so every gateway refuses its access tokens). Idempotent.
pub async fn end_session(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    sid: &str,
    feed_exp: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET ended_at = ? WHERE sid = ? AND ended_at IS NULL")
        .bind(now)
        .bind(sid)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE refresh_tokens SET revoked_at = ? WHERE sid = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(sid)
        .execute(&mut **tx)
        .await?;
    insert_revocation(tx, "sid", sid, feed_exp, now).await
}

pub struct NewCode<'a> {
    pub hash: &'a [u8],
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub sub: &'a str,
    pub scope: &'a str,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a str,
    pub sso_id: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert_code(pool: &SqlitePool, c: &NewCode<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO authorization_codes (hash, client_id, redirect_uri, sub, scope, code_challenge, code_challenge_method, nonce, auth_time, amr, sso_id, issued_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(c.hash)
    .bind(c.client_id)
    .bind(c.redirect_uri)
    .bind(c.sub)
    .bind(c.scope)
    .bind(c.code_challenge)
    .bind(c.code_challenge_method)
    .bind(c.nonce)
    .bind(c.auth_time)
    .bind(c.amr)
    .bind(c.sso_id)
    .bind(c.now)
    .bind(c.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// An authorization code as stored.
#[derive(Debug, Clone)]
pub struct StoredCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub sub: String,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub sso_id: Option<String>,
    pub expires_at: i64,
}

/// What presenting a code found.
#[derive(Debug)]
pub enum CodeUse {
    /// The first use: the code is now marked used (in `tx`).
    First(Box<StoredCode>),
    /// The code was used before; `sid` is the session its tokens went to, if any were issued.
    Replayed {
        sid: Option<String>,
    },
    Unknown,
}

/// Marks a code used and returns it, or says it was used before. The `UPDATE` comes first so
/// that the transaction holds the write lock from the start: of two concurrent redemptions,
/// exactly one sees `First`.
pub async fn use_code(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    hash: &[u8],
    now: i64,
) -> Result<CodeUse, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE authorization_codes SET used_at = ? WHERE hash = ? AND used_at IS NULL
         RETURNING client_id, redirect_uri, sub, scope, code_challenge, code_challenge_method, nonce, auth_time, amr, sso_id, expires_at",
    )
    .bind(now)
    .bind(hash)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(r) = row {
        return Ok(CodeUse::First(Box::new(StoredCode {
            client_id: r.get("client_id"),
            redirect_uri: r.get("redirect_uri"),
            sub: r.get("sub"),
            scope: r.get("scope"),
            code_challenge: r.get("code_challenge"),
            code_challenge_method: r.get("code_challenge_method"),
            nonce: r.get("nonce"),
            auth_time: r.get("auth_time"),
            amr: r.get("amr"),
            sso_id: r.get("sso_id"),
            expires_at: r.get("expires_at"),
        })));
    }
    let used: Option<Option<String>> =
        sqlx::query_scalar("SELECT sid FROM authorization_codes WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(match used {
        Some(sid) => CodeUse::Replayed { sid },
        None => CodeUse::Unknown,
    })
}

/// Records the session the tokens of a redeemed code belong to.
pub async fn set_code_session(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    hash: &[u8],
    sid: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE authorization_codes SET sid = ? WHERE hash = ?")
        .bind(sid)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
