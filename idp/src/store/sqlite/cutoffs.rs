//! Federation on SQLite: cut-offs in the revocation feed and the logout-token replay store. Run
//! inside a `BEGIN IMMEDIATE` transaction, which holds the write lock: no concurrent writer
//! interleaves between the read and the write below.

use crate::store::{NewCutoff, Revocation, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};

pub(super) async fn record_cutoff(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    c: &NewCutoff<'_>,
) -> StoreResult<bool> {
    let stored: Option<(Option<i64>, i64)> = sqlx::query_as(
        "SELECT cutoff, exp FROM revocations WHERE kind = ? AND iss = ? AND value = ?",
    )
    .bind(c.key.kind())
    .bind(c.iss)
    .bind(c.value)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((Some(cutoff), _)) = stored
        && cutoff >= c.cutoff
    {
        return Ok(false);
    }
    // A later cut-off gets a new number (AUTOINCREMENT: never one handed out before), so a
    // gateway whose cursor is past the old entry reads the new one.
    sqlx::query("DELETE FROM revocations WHERE kind = ? AND iss = ? AND value = ?")
        .bind(c.key.kind())
        .bind(c.iss)
        .bind(c.value)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO revocations (kind, iss, value, cutoff, exp, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(c.key.kind())
    .bind(c.iss)
    .bind(c.value)
    .bind(c.cutoff)
    .bind(c.exp)
    .bind(c.now)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

pub(super) async fn record_logout_jti(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    iss: &str,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO logout_jtis (iss, jti, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (iss, jti) DO UPDATE SET expires_at = excluded.expires_at
         WHERE logout_jtis.expires_at <= ?",
    )
    .bind(iss)
    .bind(jti)
    .bind(expires_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A feed row (`seq, kind, iss, value, cutoff, exp`) as a record.
pub(super) fn feed_entry(r: &SqliteRow) -> Revocation {
    let iss: String = r.get("iss");
    Revocation {
        seq: r.get("seq"),
        kind: r.get("kind"),
        value: r.get("value"),
        exp: r.get("exp"),
        iss: Some(iss).filter(|i| !i.is_empty()),
        cutoff: r.get("cutoff"),
    }
}
