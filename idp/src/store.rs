//! Storage operations on SQLite. Each function is one transaction: nothing is acknowledged to a
//! client before it is durable, and a failure leaves no partial write.

use crate::tokens::AccessClaims;
use sqlx::{Row, SqlitePool};

pub async fn record_issued(pool: &SqlitePool, c: &AccessClaims) -> Result<(), sqlx::Error> {
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
    .execute(pool)
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
    let mut tx = pool.begin().await?;
    insert_revocation(&mut tx, "jti", &c.jti, c.exp, now).await?;
    if let Some(sid) = &c.sid {
        insert_revocation(&mut tx, "sid", sid, session_exp, now).await?;
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
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM issued_tokens WHERE exp <= ?")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
