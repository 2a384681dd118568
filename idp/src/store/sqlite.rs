//! The embedded default backend: SQLite (sqlx) in WAL mode with `synchronous = FULL`, migrated on
//! open. Write transactions start with `BEGIN IMMEDIATE`, so they hold the single write lock from
//! their first statement: a deferred transaction that reads first fails at once with
//! `SQLITE_BUSY` when another writer committed in between (WAL cannot upgrade a stale read
//! snapshot), whereas an immediate one waits its turn (busy timeout). That lock is also what
//! makes code and refresh-token use single-winner.

use super::{
    CodeUse, FormToken, NewCode, NewKey, NewRefreshToken, NewSession, NewSsoSession, Revocation,
    SsoRecord, Store, StoreError, StoreResult, StoredCode, StoredKey, StoredRefresh, Transaction,
};
use crate::tokens::AccessClaims;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool};
use std::str::FromStr;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::new(e)
    }
}

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, String> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| format!("database URL {url:?}: {e}"))?
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
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| format!("opening database {url:?}: {e}"))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| format!("migrating database: {e}"))?;
        Ok(SqliteStore { pool })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn begin(&self) -> StoreResult<Box<dyn Transaction>> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Box::new(SqliteTransaction { tx }))
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
            "SELECT seq, kind, value, exp FROM revocations WHERE seq > ? AND exp > ? ORDER BY seq LIMIT ?",
        )
        .bind(since.unwrap_or(0))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
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
        ] {
            sqlx::query(table).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_code(&self, c: &NewCode<'_>) -> StoreResult<()> {
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
}

async fn consented_scopes<'e>(
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

struct SqliteTransaction {
    tx: sqlx::Transaction<'static, Sqlite>,
}

#[async_trait]
impl Transaction for SqliteTransaction {
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }

    async fn record_issued(&mut self, c: &AccessClaims) -> StoreResult<()> {
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
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn revoke_jti(&mut self, jti: &str, exp: i64, now: i64) -> StoreResult<()> {
        insert_revocation(&mut self.tx, "jti", jti, exp, now).await
    }

    async fn create_session(&mut self, s: &NewSession<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (sid, sub, client_id, sso_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(s.sid)
        .bind(s.sub)
        .bind(s.client_id)
        .bind(s.sso_id)
        .bind(s.now)
        .bind(s.expires_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn end_session(&mut self, sid: &str, feed_exp: i64, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET ended_at = ? WHERE sid = ? AND ended_at IS NULL")
            .bind(now)
            .bind(sid)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = ? WHERE sid = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(sid)
        .execute(&mut *self.tx)
        .await?;
        insert_revocation(&mut self.tx, "sid", sid, feed_exp, now).await
    }

    async fn insert_refresh_token(&mut self, t: &NewRefreshToken<'_>) -> StoreResult<()> {
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
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn find_refresh_token(&mut self, hash: &[u8]) -> StoreResult<Option<StoredRefresh>> {
        let row = sqlx::query(
            "SELECT r.family, r.sid, r.client_id, r.sub, r.scope, r.expires_at, r.used_at, r.revoked_at, s.ended_at, s.expires_at AS s_exp
             FROM refresh_tokens r JOIN sessions s ON s.sid = r.sid WHERE r.hash = ?",
        )
        .bind(hash)
        .fetch_optional(&mut *self.tx)
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

    async fn mark_refresh_used(&mut self, hash: &[u8], now: i64) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL")
                .bind(now)
                .bind(hash)
                .execute(&mut *self.tx)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_code(&mut self, hash: &[u8], now: i64) -> StoreResult<CodeUse> {
        // The UPDATE comes first: of two concurrent redemptions, exactly one marks the code.
        let row = sqlx::query(
            "UPDATE authorization_codes SET used_at = ? WHERE hash = ? AND used_at IS NULL
             RETURNING client_id, redirect_uri, sub, scope, code_challenge, code_challenge_method, nonce, auth_time, amr, sso_id, expires_at",
        )
        .bind(now)
        .bind(hash)
        .fetch_optional(&mut *self.tx)
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
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(match used {
            Some(sid) => CodeUse::Replayed { sid },
            None => CodeUse::Unknown,
        })
    }

    async fn set_code_session(&mut self, hash: &[u8], sid: &str) -> StoreResult<()> {
        sqlx::query("UPDATE authorization_codes SET sid = ? WHERE hash = ?")
            .bind(sid)
            .bind(hash)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn end_sso_session(&mut self, id: &str, now: i64) -> StoreResult<Vec<String>> {
        sqlx::query("UPDATE sso_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        let sids =
            sqlx::query_scalar("SELECT sid FROM sessions WHERE sso_id = ? AND ended_at IS NULL")
                .bind(id)
                .fetch_all(&mut *self.tx)
                .await?;
        Ok(sids)
    }

    async fn consented_scopes(
        &mut self,
        sub: &str,
        client_id: &str,
    ) -> StoreResult<Option<String>> {
        Ok(consented_scopes(&mut *self.tx, sub, client_id).await?)
    }

    async fn set_consent(
        &mut self,
        sub: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (sub, client_id, scope, granted_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (sub, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(sub)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn insert_key(&mut self, k: &NewKey<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_der, public_jwk, state, created_at, activate_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(k.kid)
        .bind(k.alg)
        .bind(k.private_key)
        .bind(k.public_jwk)
        .bind(k.state)
        .bind(k.now)
        .bind(k.activate_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn active_key(&mut self) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT kid FROM signing_keys WHERE state = 'active' LIMIT 1")
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    async fn usable_key(&mut self, alg: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT kid FROM signing_keys WHERE alg = ? AND (state = 'active'
               OR (state = 'published' AND activate_at IS NULL AND retire_at IS NULL))
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(alg)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn key_due(&mut self, now: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT kid FROM signing_keys WHERE state = 'published' AND activate_at IS NOT NULL AND activate_at <= ? ORDER BY activate_at LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn activate_key(&mut self, kid: &str, retire_at: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE signing_keys SET state = 'published', retire_at = ? WHERE state = 'active'",
        )
        .bind(retire_at)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("UPDATE signing_keys SET state = 'active', activate_at = NULL WHERE kid = ?")
            .bind(kid)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn retire_keys(&mut self, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE signing_keys SET state = 'retired' WHERE state = 'published' AND retire_at IS NOT NULL AND retire_at <= ?")
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn private_keys(&mut self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query("SELECT kid, private_der FROM signing_keys ORDER BY created_at")
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("kid"), r.get("private_der")))
            .collect())
    }

    async fn set_private_key(&mut self, kid: &str, private_key: &[u8]) -> StoreResult<()> {
        sqlx::query("UPDATE signing_keys SET private_der = ? WHERE kid = ?")
            .bind(private_key)
            .bind(kid)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

async fn insert_revocation(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    kind: &str,
    value: &str,
    exp: i64,
    now: i64,
) -> StoreResult<()> {
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
