//! [`EventStore`] on SQLite, and the event writes of the transactions that cause them.

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::events::{
    DueDelivery, EventKind, EventStore, NewDelivery, Plan, SecurityEvent, StreamRecord, Target,
};
use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};

type Tx = sqlx::Transaction<'static, Sqlite>;

/// Records that the live session `sid` ends (called before the session is marked ended; a
/// session already ended records nothing).
pub(super) async fn session_ended(tx: &mut Tx, sid: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO security_events (kind, sid, sub, client_id, jti, occurred_at)
         SELECT 'session_revoked', sid, sub, client_id, NULL, ? FROM sessions
         WHERE sid = ? AND ended_at IS NULL",
    )
    .bind(now)
    .bind(sid)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that the access token `jti` is revoked (called before it enters the feed; a token
/// revoked before, or not recorded as issued, records nothing).
pub(super) async fn token_revoked(tx: &mut Tx, jti: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO security_events (kind, sid, sub, client_id, jti, occurred_at)
         SELECT 'token_revoked', sid, sub, client_id, jti, ? FROM issued_tokens
         WHERE jti = ? AND NOT EXISTS
           (SELECT 1 FROM revocations WHERE kind = 'jti' AND iss = '' AND value = ?)",
    )
    .bind(now)
    .bind(jti)
    .bind(jti)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that the access token `jti` of a client acting for itself is revoked (called before
/// it enters the feed; a token revoked before, or recorded as issued, records nothing: its
/// record names it in [`token_revoked`]).
pub(super) async fn client_token_revoked(
    tx: &mut Tx,
    jti: &str,
    sub: &str,
    client_id: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO security_events (kind, sid, sub, client_id, jti, occurred_at)
         SELECT 'token_revoked', NULL, ?, ?, ?, ?
         WHERE NOT EXISTS (SELECT 1 FROM issued_tokens WHERE jti = ?)
           AND NOT EXISTS
           (SELECT 1 FROM revocations WHERE kind = 'jti' AND iss = '' AND value = ?)",
    )
    .bind(sub)
    .bind(client_id)
    .bind(jti)
    .bind(now)
    .bind(jti)
    .bind(jti)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn stream(r: &SqliteRow) -> StreamRecord {
    StreamRecord {
        stream_id: r.get("stream_id"),
        client_id: r.get("client_id"),
        delivery_method: r.get("delivery_method"),
        config: r.get("config"),
        status: r.get("status"),
        reason: r.get("reason"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

async fn insert(tx: &mut Tx, d: &NewDelivery, now: i64) -> StoreResult<()> {
    let (stream_id, client_id) = match &d.target {
        Target::Stream(s) => (Some(s.as_str()), None),
        Target::Client(c) => (None, Some(c.as_str())),
    };
    sqlx::query(
        "INSERT INTO event_outbox (stream_id, client_id, jti, token, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(stream_id)
    .bind(client_id)
    .bind(&d.jti)
    .bind(&d.token)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn fan_out(&self, limit: i64, now: i64, plan: &Plan<'_>) -> StoreResult<usize> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "SELECT id, kind, sid, sub, client_id, jti, occurred_at FROM security_events ORDER BY id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let streams: Vec<StreamRecord> = sqlx::query(
            "SELECT * FROM ssf_streams WHERE status IN ('enabled', 'paused') ORDER BY stream_id",
        )
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(stream)
        .collect();
        for r in &rows {
            let id: i64 = r.get("id");
            let kind: String = r.get("kind");
            if let Some(kind) = EventKind::parse(&kind) {
                let event = SecurityEvent {
                    id,
                    kind,
                    sid: r.get("sid"),
                    sub: r.get("sub"),
                    client_id: r.get("client_id"),
                    jti: r.get("jti"),
                    occurred_at: r.get("occurred_at"),
                };
                for d in plan(&event, &streams) {
                    insert(&mut tx, &d, now).await?;
                }
            }
            sqlx::query("DELETE FROM security_events WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    async fn pending_events(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM security_events")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn create_stream(&self, s: &StreamRecord) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO ssf_streams (stream_id, client_id, delivery_method, config, status, reason, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&s.stream_id)
        .bind(&s.client_id)
        .bind(&s.delivery_method)
        .bind(&s.config)
        .bind(&s.status)
        .bind(&s.reason)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn stream_of_client(&self, client_id: &str) -> StoreResult<Option<StreamRecord>> {
        let row = sqlx::query("SELECT * FROM ssf_streams WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(stream))
    }

    async fn update_stream(&self, s: &StreamRecord) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE ssf_streams SET delivery_method = ?, config = ?, status = ?, reason = ?, updated_at = ?
             WHERE stream_id = ? AND client_id = ?",
        )
        .bind(&s.delivery_method)
        .bind(&s.config)
        .bind(&s.status)
        .bind(&s.reason)
        .bind(s.updated_at)
        .bind(&s.stream_id)
        .bind(&s.client_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_stream(&self, stream_id: &str, client_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM ssf_streams WHERE stream_id = ? AND client_id = ?")
            .bind(stream_id)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn enqueue(&self, d: &NewDelivery, now: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        insert(&mut tx, d, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn stream_sets(&self, stream_id: &str, limit: i64) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT jti, token FROM event_outbox WHERE stream_id = ? ORDER BY id LIMIT ?",
        )
        .bind(stream_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn ack(&self, stream_id: &str, jtis: &[String]) -> StoreResult<u64> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut n = 0;
        for jti in jtis {
            n += sqlx::query("DELETE FROM event_outbox WHERE stream_id = ? AND jti = ?")
                .bind(stream_id)
                .bind(jti)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn due_deliveries(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<DueDelivery>> {
        let rows = sqlx::query(
            "SELECT o.id, o.stream_id, o.client_id, o.jti, o.token, o.attempts, s.config
             FROM event_outbox o LEFT JOIN ssf_streams s ON s.stream_id = o.stream_id
             WHERE o.next_attempt_at <= ?
               AND (o.client_id IS NOT NULL
                    OR (s.status = 'enabled' AND s.delivery_method = 'urn:ietf:rfc:8935'))
             ORDER BY o.next_attempt_at, o.id LIMIT ?",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().filter_map(due).collect())
    }

    async fn claim_delivery(
        &self,
        id: i64,
        attempts: i64,
        next_attempt_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE event_outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id = ? AND attempts = ?",
        )
        .bind(next_attempt_ms)
        .bind(id)
        .bind(attempts)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn expire_stream_sets(&self, created_before: i64) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM event_outbox WHERE stream_id IS NOT NULL AND created_at < ?")
                .bind(created_before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn live_sessions_of_subject(&self, sub: &str, now: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT sid FROM sessions WHERE sub = ? AND ended_at IS NULL AND expires_at > ? ORDER BY sid",
        )
        .bind(sub)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn reschedule_delivery(
        &self,
        id: i64,
        attempts: i64,
        next_attempt_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE event_outbox SET next_attempt_at = ? WHERE id = ? AND attempts = ?")
            .bind(next_attempt_ms)
            .bind(id)
            .bind(attempts)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_delivery(&self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM event_outbox WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn due(r: &SqliteRow) -> Option<DueDelivery> {
    let stream_id: Option<String> = r.get("stream_id");
    let client_id: Option<String> = r.get("client_id");
    let target = match (stream_id, client_id) {
        (Some(s), _) => Target::Stream(s),
        (None, Some(c)) => Target::Client(c),
        (None, None) => return None,
    };
    Some(DueDelivery {
        id: r.get("id"),
        target,
        jti: r.get("jti"),
        token: r.get("token"),
        attempts: r.get("attempts"),
        stream_config: r.get("config"),
    })
}
