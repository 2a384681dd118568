//! The Shared Signals receiver's SET records on PostgreSQL. Of two replicas storing the same
//! SET at once, the second waits on the first's row and then reads it (a redelivery).

use crate::store::{SetReceipt, StoreResult};
use sqlx::Postgres;

pub(super) async fn record_received_set(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    transmitter: &str,
    jti: &str,
    digest: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<SetReceipt> {
    let inserted = sqlx::query(
        "INSERT INTO ssf_received_sets (transmitter, jti, digest, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (transmitter, jti) DO UPDATE
             SET digest = EXCLUDED.digest, expires_at = EXCLUDED.expires_at
             WHERE ssf_received_sets.expires_at <= $5",
    )
    .bind(transmitter)
    .bind(jti)
    .bind(digest)
    .bind(expires_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 1 {
        // Retention is bounded: what has passed its time goes now (by the expiry index).
        sqlx::query("DELETE FROM ssf_received_sets WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut **tx)
            .await?;
        return Ok(SetReceipt::New);
    }
    let (stored,): (String,) =
        sqlx::query_as("SELECT digest FROM ssf_received_sets WHERE transmitter = $1 AND jti = $2")
            .bind(transmitter)
            .bind(jti)
            .fetch_one(&mut **tx)
            .await?;
    Ok(if stored == digest {
        SetReceipt::Redelivered
    } else {
        SetReceipt::JtiReused
    })
}
