//! The Shared Signals receiver's SET records on SQLite. Run inside a `BEGIN IMMEDIATE`
//! transaction (the write lock is held): no concurrent writer interleaves between the read and
//! the write.

use crate::store::{SetReceipt, StoreResult};
use sqlx::Sqlite;

pub(super) async fn record_received_set(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    transmitter: &str,
    jti: &str,
    digest: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<SetReceipt> {
    // Retention is bounded: what has passed its time goes now (by the expiry index).
    sqlx::query("DELETE FROM ssf_received_sets WHERE expires_at <= ?")
        .bind(now)
        .execute(&mut **tx)
        .await?;
    let stored: Option<(String,)> =
        sqlx::query_as("SELECT digest FROM ssf_received_sets WHERE transmitter = ? AND jti = ?")
            .bind(transmitter)
            .bind(jti)
            .fetch_optional(&mut **tx)
            .await?;
    if let Some((d,)) = stored {
        return Ok(if d == digest {
            SetReceipt::Redelivered
        } else {
            SetReceipt::JtiReused
        });
    }
    sqlx::query(
        "INSERT INTO ssf_received_sets (transmitter, jti, digest, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(transmitter)
    .bind(jti)
    .bind(digest)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(SetReceipt::New)
}
