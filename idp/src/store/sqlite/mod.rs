//! The embedded default backend: SQLite (sqlx) in WAL mode with `synchronous = FULL`, migrated on
//! open. Write transactions start with `BEGIN IMMEDIATE`, so they hold the single write lock from
//! their first statement: a deferred transaction that reads first fails at once with
//! `SQLITE_BUSY` when another writer committed in between (WAL cannot upgrade a stale read
//! snapshot), whereas an immediate one waits its turn (busy timeout). That lock is also what
//! makes code and refresh-token use single-winner.

use super::{
    AddressFailures, FormToken, LoginFailures, NewCode, NewSsoSession, Revocation,
    RevocationSignal, SsoRecord, Store, StoreOpenError, StoreResult, StoredKey, Transaction,
    UserFailures,
};
mod cutoffs;
mod events;
mod ssf_received;
mod transaction;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool};
use std::str::FromStr;
use transaction::SqliteTransaction;

pub struct SqliteStore {
    pool: SqlitePool,
    /// One process per database file: a revocation wakes the waiters of this process.
    signal: RevocationSignal,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreOpenError> {
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| StoreOpenError::Open {
            url: url.to_owned(),
            source: e,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| failed(e.into()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Everything acknowledged to a client is durable.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| failed(format!("creating {}: {e}", parent.display()).into()))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .after_release(|conn, _| Box::pin(async move { still_usable(conn).await }))
            .connect_with(options)
            .await
            .map_err(|e| failed(e.into()))?;
        super::migrations::sqlite()
            .run(&pool)
            .await
            .map_err(|e| StoreOpenError::Migrate {
                url: url.to_owned(),
                source: e.into(),
            })?;
        Ok(SqliteStore {
            pool,
            signal: RevocationSignal::default(),
        })
    }
}

/// Whether a connection going back to the pool may serve again. When a write fails because the
/// disk is full (`SQLITE_FULL`) or a write is refused (`SQLITE_IOERR_WRITE`), SQLite rolls the
/// whole transaction back by itself; sqlx's rollback on drop then fails ("no transaction is
/// active") and leaves its own transaction depth at 1, so every later `BEGIN` on that connection
/// would fail (a 500 for good, long after space returned). The ping waits for the rollback sqlx
/// queued on drop; a connection still counted in a transaction after it is closed, not reused.
async fn still_usable(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("closing a database connection left in a failed transaction");
        return Ok(false);
    }
    Ok(true)
}

#[async_trait]
impl Store for SqliteStore {
    async fn begin(&self) -> StoreResult<Box<dyn Transaction>> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Box::new(SqliteTransaction {
            tx,
            signal: self.signal.clone(),
            revoked: false,
        }))
    }

    async fn is_revoked(&self, jti: &str, sid: Option<&str>) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM revocations WHERE (kind = 'jti' AND value = ?) OR (kind = 'sid' AND value = ?)",
        )
        .bind(jti)
        .bind(sid.unwrap_or(""))
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    async fn revocations_since(
        &self,
        since: Option<i64>,
        now: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Revocation>, i64)> {
        let rows = sqlx::query(
            "SELECT seq, kind, iss, value, cutoff, exp FROM revocations WHERE seq > ? AND exp > ? ORDER BY seq LIMIT ?",
        )
        .bind(since.unwrap_or(0))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let entries: Vec<Revocation> = rows.iter().map(cutoffs::feed_entry).collect();
        let cursor = match entries.last() {
            Some(last) => last.seq,
            None if (limit > 0) => {
                // Nothing live after `since`: the cursor moves to the newest sequence number
                // handed out (expired entries need not be read again). AUTOINCREMENT keeps it
                // even when those rows are purged.
                let max: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'revocations'",
                )
                .fetch_optional(&self.pool)
                .await?;
                max.unwrap_or(0).max(since.unwrap_or(0))
            }
            None => since.unwrap_or(0),
        };
        Ok((entries, cursor))
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for table in [
            "DELETE FROM issued_tokens WHERE exp <= ?",
            "DELETE FROM revocations WHERE exp <= ?",
            "DELETE FROM form_tokens WHERE expires_at <= ?",
            "DELETE FROM dpop_jtis WHERE expires_at <= ?",
            "DELETE FROM logout_jtis WHERE expires_at <= ?",
            "DELETE FROM login_address_failures WHERE forget_at <= ?",
            "DELETE FROM login_user_failures WHERE forget_at <= ?",
        ] {
            sqlx::query(table).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_dpop_jti(&self, id: &str, expires_at: i64, now: i64) -> StoreResult<bool> {
        // One statement: a new row, or a row whose time is up taken over; a live row stays and
        // nothing is affected (a replay).
        let done = sqlx::query(
            "INSERT INTO dpop_jtis (id, expires_at) VALUES (?, ?)
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
             WHERE dpop_jtis.expires_at <= ?",
        )
        .bind(id)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_code(&self, c: &NewCode<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (hash, client_id, redirect_uri, sub, scope, code_challenge, code_challenge_method, nonce, auth_time, amr, sso_id, issued_at, expires_at, dpop_jkt)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(c.dpop_jkt)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_sso_session(&self, id: &str, now: i64) -> StoreResult<Option<SsoRecord>> {
        let row = sqlx::query(
            "SELECT sub, auth_time, amr FROM sso_sessions WHERE id = ? AND ended_at IS NULL AND expires_at > ?",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| SsoRecord {
            sub: r.get("sub"),
            auth_time: r.get("auth_time"),
            amr: r.get("amr"),
        }))
    }

    async fn sso_of_token_session(&self, sid: &str) -> StoreResult<Option<String>> {
        let id =
            sqlx::query_scalar::<_, Option<String>>("SELECT sso_id FROM sessions WHERE sid = ?")
                .bind(sid)
                .fetch_optional(&self.pool)
                .await?;
        Ok(id.flatten())
    }

    async fn insert_sso_session(&self, s: &NewSsoSession<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sso_sessions (id, sub, auth_time, amr, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id)
        .bind(s.sub)
        .bind(s.auth_time)
        .bind(s.amr)
        .bind(s.now)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn reauthenticate_sso_session(
        &self,
        id: &str,
        auth_time: i64,
        amr: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE sso_sessions SET auth_time = ?, amr = ? WHERE id = ?")
            .bind(auth_time)
            .bind(amr)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn consented_scopes(&self, sub: &str, client_id: &str) -> StoreResult<Option<String>> {
        Ok(consented_scopes(&self.pool, sub, client_id).await?)
    }

    async fn insert_form_token(&self, t: &FormToken<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO form_tokens (hash, browser, purpose, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(t.hash)
        .bind(t.browser)
        .bind(t.purpose)
        .bind(t.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn consume_form_token(
        &self,
        hash: &str,
        browser: &str,
        purpose: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM form_tokens WHERE hash = ? AND browser = ? AND purpose = ? AND expires_at > ?",
        )
        .bind(hash)
        .bind(browser)
        .bind(purpose)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_der, public_jwk, state,
                    (state = 'published' AND activate_at IS NULL AND retire_at IS NULL) AS standing
             FROM signing_keys WHERE state != 'retired' ORDER BY created_at, rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StoredKey {
                kid: r.get("kid"),
                alg: r.get("alg"),
                private_key: r.get("private_der"),
                public_jwk: r.get("public_jwk"),
                active: r.get::<String, _>("state") == "active",
                standing: r.get("standing"),
            })
            .collect())
    }

    fn revocation_signal(&self) -> RevocationSignal {
        self.signal.clone()
    }

    async fn login_failures(
        &self,
        user: &str,
        address: Option<&str>,
    ) -> StoreResult<LoginFailures> {
        let mut conn = self.pool.acquire().await?;
        Ok(login_failures(&mut conn, user, address).await?)
    }

    async fn clear_user_failures(&self, user: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_user_failures WHERE username = ?")
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

pub(super) async fn login_failures(
    conn: &mut sqlx::SqliteConnection,
    user: &str,
    address: Option<&str>,
) -> Result<LoginFailures, sqlx::Error> {
    let user = sqlx::query(
        "SELECT failures, last_failure, forget_at FROM login_user_failures WHERE username = ?",
    )
    .bind(user)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| UserFailures {
        failures: r.get("failures"),
        last_failure: r.get("last_failure"),
        forget_at: r.get("forget_at"),
    });
    let address = match address {
        None => None,
        Some(a) => sqlx::query(
            "SELECT failures, window_start, locked_until, forget_at FROM login_address_failures WHERE address = ?",
        )
        .bind(a)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| AddressFailures {
            failures: r.get("failures"),
            window_start: r.get("window_start"),
            locked_until: r.get("locked_until"),
            forget_at: r.get("forget_at"),
        }),
    };
    Ok(LoginFailures { user, address })
}

pub(super) async fn consented_scopes<'e>(
    db: impl sqlx::Executor<'e, Database = Sqlite>,
    sub: &str,
    client_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT scope FROM consents WHERE sub = ? AND client_id = ?")
        .bind(sub)
        .bind(client_id)
        .fetch_optional(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use sqlx::Connection;

    /// Sets `PRAGMA max_page_count` on every connection of the pool (4): past it, writes fail
    /// with `SQLITE_FULL` as on a full disk.
    async fn limit_pages(store: &SqliteStore, pages: i64) {
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut conn = store.pool.acquire().await.unwrap();
            // an integer: nothing to inject
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA max_page_count = {pages}"
            )))
            .execute(&mut *conn)
            .await
            .unwrap();
            held.push(conn);
        }
    }

    /// A full database answers "unavailable" (503) for each write, and once there is room again
    /// every connection writes: none is left stuck in the transaction SQLite rolled back.
    #[tokio::test]
    async fn writes_work_again_after_the_database_was_full() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("full.sqlite").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        limit_pages(&store, pages).await;
        let mut failures = 0;
        for i in 0..200 {
            let mut tx = crate::store::Store::begin(&store).await.unwrap();
            let jti = format!("{i:0>200}");
            let written = match tx.revoke_jti(&jti, 4_000_000_000, 1).await {
                Ok(()) => tx.commit().await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                assert!(e.is_unavailable(), "{e}");
                failures += 1;
            }
        }
        assert!(failures > 0, "the page limit was never reached");
        limit_pages(&store, 1_073_741_823).await;
        for i in 0..20 {
            let mut tx = crate::store::Store::begin(&store).await.unwrap();
            tx.revoke_jti(&format!("after-{i}"), 4_000_000_000, 1)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let mut conn = store.pool.acquire().await.unwrap();
        assert!(!conn.is_in_transaction());
        conn.ping().await.unwrap();
    }
}
