//! The backend for several IDP replicas on one database: PostgreSQL (sqlx), migrated on open
//! from `migrations-postgres/` (sqlx holds an advisory lock while migrating, so replicas starting
//! together migrate once).
//!
//! How each cross-replica guarantee is kept (READ COMMITTED, PostgreSQL's default):
//! - **One key for the cluster**: every transaction that touches signing keys first takes one
//!   transaction-scoped advisory lock ([`transaction`]), so "no active key → create one" and
//!   "a key is due → activate it" run one replica at a time; a partial unique index also refuses
//!   a second active key.
//! - **Single use** of codes and refresh tokens: the row is updated `WHERE used_at IS NULL` (a
//!   concurrent update waits for the first to commit and then finds it used), and a refresh
//!   token is read `FOR UPDATE`, so the loser of a race sees the token used — a reuse, which
//!   ends the family, as on SQLite.
//! - **The feed cursor never skips**: numbers come from a one-row counter updated in the
//!   revoking transaction (see the migration), so they become visible in commit order; a reader
//!   first reads the committed counter, then the entries up to it.
//! - **Wake-ups**: a revoking transaction sends `NOTIFY idp_revocations` (delivered at commit);
//!   every replica LISTENs ([`listener`]).
//! - **Unavailability**: the pool checks a connection before handing it out and reconnects;
//!   while the database is unreachable, calls fail with [`StoreError::is_unavailable`] after the
//!   acquire timeout (answered 503), and a transaction cut off mid-way is rolled back by the
//!   server.

mod cutoffs;
mod events;
mod listener;
mod ssf_received;
mod transaction;

use super::{
    AddressFailures, FormToken, LoginFailures, NewCode, NewSsoSession, Revocation,
    RevocationSignal, SsoRecord, Store, StoreError, StoreOpenError, StoreResult, StoredKey,
    Transaction, UserFailures,
};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row};
use std::str::FromStr;
use std::time::Duration;
use transaction::PgTransaction;

/// The notification channel of the revocation feed.
pub const REVOCATION_CHANNEL: &str = "idp_revocations";

/// Connections per replica (the LISTEN connection included).
const MAX_CONNECTIONS: u32 = 16;
/// How long a request waits for a connection before it is answered 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct PgStore {
    pool: PgPool,
    signal: RevocationSignal,
    /// The LISTEN task; stopped with the store.
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://…`) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<PgStore, StoreOpenError> {
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| StoreOpenError::Open {
            url: redacted(url),
            source: e,
        };
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| failed(e.into()))?
            .application_name("idp")
            // Everything acknowledged to a client is durable (whatever the server's default).
            .options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(|e| failed(e.into()))?;
        super::migrations::postgres()
            .run(&pool)
            .await
            .map_err(|e| StoreOpenError::Migrate {
                url: redacted(url),
                source: e.into(),
            })?;
        let signal = RevocationSignal::default();
        let listener = listener::spawn(pool.clone(), signal.clone());
        Ok(PgStore {
            pool,
            signal,
            listener,
        })
    }
}

/// `url` without its password (for error messages and logs).
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[async_trait]
impl Store for PgStore {
    async fn begin(&self) -> StoreResult<Box<dyn Transaction>> {
        let tx = self.pool.begin().await?;
        Ok(Box::new(PgTransaction::new(tx, self.signal.clone())))
    }

    async fn is_revoked(&self, jti: &str, sid: Option<&str>) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM revocations WHERE (kind = 'jti' AND value = $1) OR (kind = 'sid' AND value = $2))",
        )
        .bind(jti)
        .bind(sid.unwrap_or(""))
        .fetch_one(&self.pool)
        .await?)
    }

    async fn revocations_since(
        &self,
        since: Option<i64>,
        now: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Revocation>, i64)> {
        let since = since.unwrap_or(0);
        // The committed head first: every entry numbered up to it is committed (numbers are
        // taken in commit order), so the read below sees all of them, and nothing above it is
        // skipped by a cursor that stops there.
        let head: i64 = sqlx::query_scalar("SELECT seq FROM revocation_feed_head")
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT seq, kind, iss, value, cutoff, exp FROM revocations
             WHERE seq > $1 AND seq <= $2 AND exp > $3 ORDER BY seq LIMIT $4",
        )
        .bind(since)
        .bind(head)
        .bind(now)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        let entries: Vec<Revocation> = rows.iter().map(cutoffs::feed_entry).collect();
        let full_page = i64::try_from(entries.len()).unwrap_or(i64::MAX) >= limit;
        let cursor = match entries.last() {
            Some(last) if full_page => last.seq,
            _ if limit > 0 => head.max(since),
            _ => since,
        };
        Ok((entries, cursor))
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for statement in [
            "DELETE FROM issued_tokens WHERE exp <= $1",
            "DELETE FROM revocations WHERE exp <= $1",
            "DELETE FROM form_tokens WHERE expires_at <= $1",
            "DELETE FROM login_address_failures WHERE forget_at <= $1",
            "DELETE FROM login_user_failures WHERE forget_at <= $1",
            "DELETE FROM dpop_jtis WHERE expires_at <= $1",
            "DELETE FROM logout_jtis WHERE expires_at <= $1",
        ] {
            sqlx::query(statement).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_code(&self, c: &NewCode<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (hash, client_id, redirect_uri, sub, scope, code_challenge, code_challenge_method, nonce, auth_time, amr, sso_id, issued_at, expires_at, dpop_jkt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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

    async fn record_dpop_jti(&self, id: &str, expires_at: i64, now: i64) -> StoreResult<bool> {
        // One statement, atomic under concurrency (the primary key): a new row, or a row whose
        // time is up taken over; a live row stays and nothing is affected (a replay).
        let done = sqlx::query(
            "INSERT INTO dpop_jtis (id, expires_at) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
             WHERE dpop_jtis.expires_at <= $3",
        )
        .bind(id)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_sso_session(&self, id: &str, now: i64) -> StoreResult<Option<SsoRecord>> {
        let row = sqlx::query(
            "SELECT sub, auth_time, amr FROM sso_sessions WHERE id = $1 AND ended_at IS NULL AND expires_at > $2",
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
            sqlx::query_scalar::<_, Option<String>>("SELECT sso_id FROM sessions WHERE sid = $1")
                .bind(sid)
                .fetch_optional(&self.pool)
                .await?;
        Ok(id.flatten())
    }

    async fn insert_sso_session(&self, s: &NewSsoSession<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sso_sessions (id, sub, auth_time, amr, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
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
        sqlx::query("UPDATE sso_sessions SET auth_time = $1, amr = $2 WHERE id = $3")
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
            "INSERT INTO form_tokens (hash, browser, purpose, expires_at) VALUES ($1, $2, $3, $4)",
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
            "DELETE FROM form_tokens WHERE hash = $1 AND browser = $2 AND purpose = $3 AND expires_at > $4",
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
             FROM signing_keys WHERE state != 'retired' ORDER BY created_at, position",
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
        sqlx::query("DELETE FROM login_user_failures WHERE username = $1")
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

pub(super) async fn login_failures(
    conn: &mut sqlx::PgConnection,
    user: &str,
    address: Option<&str>,
) -> Result<LoginFailures, StoreError> {
    let user = sqlx::query(
        "SELECT failures, last_failure, forget_at FROM login_user_failures WHERE username = $1",
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
            "SELECT failures, window_start, locked_until, forget_at FROM login_address_failures WHERE address = $1",
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
    db: impl sqlx::Executor<'e, Database = Postgres>,
    sub: &str,
    client_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT scope FROM consents WHERE sub = $1 AND client_id = $2")
        .bind(sub)
        .bind(client_id)
        .fetch_optional(db)
        .await
}
