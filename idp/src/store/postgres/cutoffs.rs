//! Federation on PostgreSQL: cut-offs in the revocation feed (numbered from the feed head like
//! every entry, see the parent module) and the logout-token replay store.

use crate::store::{NewCutoff, Revocation, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};

/// One statement: the next number from the feed head (which stays locked until the transaction
/// ends, so numbers are taken in commit order), then a new entry, or the stored one moved to that
/// number when this cut-off is later. An equal or earlier cut-off affects no row (its number is a
/// gap readers step over).
pub(super) async fn record_cutoff(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    c: &NewCutoff<'_>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "WITH next AS (UPDATE revocation_feed_head SET seq = seq + 1 RETURNING seq)
         INSERT INTO revocations (seq, kind, iss, value, cutoff, exp, revoked_at)
         SELECT next.seq, $1, $2, $3, $4, $5, $6 FROM next
         ON CONFLICT (kind, iss, value) DO UPDATE
             SET seq = EXCLUDED.seq, cutoff = EXCLUDED.cutoff,
                 exp = GREATEST(revocations.exp, EXCLUDED.exp), revoked_at = EXCLUDED.revoked_at
             WHERE revocations.cutoff IS NULL OR revocations.cutoff < EXCLUDED.cutoff",
    )
    .bind(c.key.kind())
    .bind(c.iss)
    .bind(c.value)
    .bind(c.cutoff)
    .bind(c.exp)
    .bind(c.now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn record_logout_jti(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    iss: &str,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO logout_jtis (iss, jti, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (iss, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
         WHERE logout_jtis.expires_at <= $4",
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
pub(super) fn feed_entry(r: &PgRow) -> Revocation {
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
