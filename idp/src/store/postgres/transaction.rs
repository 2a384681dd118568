//! [`Transaction`] on PostgreSQL: one READ COMMITTED transaction per value; the cross-replica
//! locks it takes are described in the parent module.

use super::{REVOCATION_CHANNEL, consented_scopes, cutoffs, login_failures};
use crate::store::{
    CodeUse, IssuedToken, LoginFailures, NewCutoff, NewKey, NewRefreshToken, NewSession,
    RevocationSignal, StoreResult, StoredCode, StoredRefresh, Transaction,
};
use async_trait::async_trait;
use sqlx::{Postgres, Row};

/// Advisory lock classes (the first key of `pg_advisory_xact_lock(int, int)`).
const LOCK_SIGNING_KEYS: i32 = 1;
const LOCK_LOGIN_USER: i32 = 2;
const LOCK_LOGIN_ADDRESS: i32 = 3;

pub(super) struct PgTransaction {
    tx: sqlx::Transaction<'static, Postgres>,
    signal: RevocationSignal,
    /// Whether the transaction added to the revocation feed (its commit notifies every replica).
    revoked: bool,
    /// Whether the signing-key lock is held (taken once, held to the end).
    keys_locked: bool,
}

impl PgTransaction {
    pub(super) fn new(tx: sqlx::Transaction<'static, Postgres>, signal: RevocationSignal) -> Self {
        PgTransaction {
            tx,
            signal,
            revoked: false,
            keys_locked: false,
        }
    }

    /// Serialises every key transaction of the cluster (released at commit or rollback).
    async fn lock_keys(&mut self) -> StoreResult<()> {
        if !self.keys_locked {
            sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
                .bind(LOCK_SIGNING_KEYS)
                .execute(&mut *self.tx)
                .await?;
            self.keys_locked = true;
        }
        Ok(())
    }

    /// Adds `(kind, value)` to the feed with the next number from the feed head (locked until
    /// this transaction ends, so numbers are taken in commit order). A repeated revocation keeps
    /// its number and may extend its expiry.
    async fn insert_revocation(
        &mut self,
        kind: &str,
        value: &str,
        exp: i64,
        now: i64,
    ) -> StoreResult<()> {
        self.revoked = true;
        let extended = sqlx::query(
            "UPDATE revocations SET exp = GREATEST(exp, $3) WHERE kind = $1 AND iss = '' AND value = $2",
        )
        .bind(kind)
        .bind(value)
        .bind(exp)
        .execute(&mut *self.tx)
        .await?;
        if extended.rows_affected() > 0 {
            return Ok(());
        }
        // (A concurrent first revocation of the same value makes the insert a conflict: the
        // number taken is then unused, a gap readers step over.)
        sqlx::query(
            "WITH next AS (UPDATE revocation_feed_head SET seq = seq + 1 RETURNING seq)
             INSERT INTO revocations (seq, kind, value, exp, revoked_at)
             SELECT next.seq, $1, $2, $3, $4 FROM next
             ON CONFLICT (kind, iss, value) DO UPDATE SET exp = GREATEST(revocations.exp, EXCLUDED.exp)",
        )
        .bind(kind)
        .bind(value)
        .bind(exp)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Transaction for PgTransaction {
    async fn commit(mut self: Box<Self>) -> StoreResult<()> {
        if self.revoked {
            // Delivered to every listening replica when (and only if) the commit succeeds.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(REVOCATION_CHANNEL)
                .execute(&mut *self.tx)
                .await?;
        }
        let PgTransaction {
            tx,
            signal,
            revoked,
            ..
        } = *self;
        tx.commit().await?;
        if revoked {
            signal.notify();
        }
        Ok(())
    }

    async fn record_issued(&mut self, t: &IssuedToken<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO issued_tokens (jti, client_id, sub, sid, scope, issued_at, exp) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.jti)
        .bind(t.client_id)
        .bind(t.sub)
        .bind(t.sid)
        .bind(t.scope)
        .bind(t.issued_at)
        .bind(t.exp)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn revoke_jti(&mut self, jti: &str, exp: i64, now: i64) -> StoreResult<()> {
        super::events::token_revoked(&mut self.tx, jti, now).await?;
        self.insert_revocation("jti", jti, exp, now).await
    }

    async fn client_token_revoked(
        &mut self,
        jti: &str,
        sub: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        super::events::client_token_revoked(&mut self.tx, jti, sub, client_id, now).await
    }

    async fn create_session(&mut self, s: &NewSession<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (sid, sub, client_id, sso_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
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
        super::events::session_ended(&mut self.tx, sid, now).await?;
        sqlx::query("UPDATE sessions SET ended_at = $1 WHERE sid = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(sid)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE sid = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(sid)
        .execute(&mut *self.tx)
        .await?;
        self.insert_revocation("sid", sid, feed_exp, now).await
    }

    async fn insert_refresh_token(&mut self, t: &NewRefreshToken<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, family, sid, client_id, sub, scope, issued_at, expires_at, dpop_jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(t.hash)
        .bind(t.family)
        .bind(t.sid)
        .bind(t.client_id)
        .bind(t.sub)
        .bind(t.scope)
        .bind(t.now)
        .bind(t.expires_at)
        .bind(t.dpop_jkt)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn find_refresh_token(&mut self, hash: &[u8]) -> StoreResult<Option<StoredRefresh>> {
        // FOR UPDATE: of two replicas presenting the same token, the second waits for the
        // first to commit and then reads the token as used (a reuse), as on SQLite.
        let row = sqlx::query(
            "SELECT r.family, r.sid, r.client_id, r.sub, r.scope, r.expires_at, r.used_at, r.revoked_at, s.ended_at, s.expires_at AS s_exp, r.dpop_jkt
             FROM refresh_tokens r JOIN sessions s ON s.sid = r.sid WHERE r.hash = $1 FOR UPDATE OF r",
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
            dpop_jkt: r.get("dpop_jkt"),
        }))
    }

    async fn mark_refresh_used(&mut self, hash: &[u8], now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(hash)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_code(&mut self, hash: &[u8], now: i64) -> StoreResult<CodeUse> {
        // The UPDATE comes first: a concurrent redemption waits for this one to end and then
        // finds the code used.
        let row = sqlx::query(
            "UPDATE authorization_codes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL
             RETURNING client_id, redirect_uri, sub, scope, code_challenge, code_challenge_method, nonce, auth_time, amr, sso_id, expires_at, dpop_jkt",
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
                dpop_jkt: r.get("dpop_jkt"),
            })));
        }
        let used: Option<Option<String>> =
            sqlx::query_scalar("SELECT sid FROM authorization_codes WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(match used {
            Some(sid) => CodeUse::Replayed { sid },
            None => CodeUse::Unknown,
        })
    }

    async fn set_code_session(&mut self, hash: &[u8], sid: &str) -> StoreResult<()> {
        sqlx::query("UPDATE authorization_codes SET sid = $1 WHERE hash = $2")
            .bind(sid)
            .bind(hash)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn end_sso_session(&mut self, id: &str, now: i64) -> StoreResult<Vec<String>> {
        sqlx::query("UPDATE sso_sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        let sids = sqlx::query_scalar(
            "SELECT sid FROM sessions WHERE sso_id = $1 AND ended_at IS NULL ORDER BY sid",
        )
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
            "INSERT INTO consents (sub, client_id, scope, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (sub, client_id) DO UPDATE SET scope = EXCLUDED.scope, granted_at = EXCLUDED.granted_at",
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
        self.lock_keys().await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_der, public_jwk, state, created_at, activate_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
        self.lock_keys().await?;
        Ok(
            sqlx::query_scalar("SELECT kid FROM signing_keys WHERE state = 'active' LIMIT 1")
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    async fn usable_key(&mut self, alg: &str) -> StoreResult<Option<String>> {
        self.lock_keys().await?;
        Ok(sqlx::query_scalar(
            "SELECT kid FROM signing_keys WHERE alg = $1 AND (state = 'active'
               OR (state = 'published' AND activate_at IS NULL AND retire_at IS NULL))
             ORDER BY created_at DESC, position DESC LIMIT 1",
        )
        .bind(alg)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn key_due(&mut self, now: i64) -> StoreResult<Option<String>> {
        self.lock_keys().await?;
        Ok(sqlx::query_scalar(
            "SELECT kid FROM signing_keys WHERE state = 'published' AND activate_at IS NOT NULL AND activate_at <= $1 ORDER BY activate_at, position LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn activate_key(&mut self, kid: &str, retire_at: i64) -> StoreResult<()> {
        self.lock_keys().await?;
        sqlx::query(
            "UPDATE signing_keys SET state = 'published', retire_at = $1 WHERE state = 'active'",
        )
        .bind(retire_at)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("UPDATE signing_keys SET state = 'active', activate_at = NULL WHERE kid = $1")
            .bind(kid)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn retire_keys(&mut self, now: i64) -> StoreResult<()> {
        self.lock_keys().await?;
        sqlx::query(
            "UPDATE signing_keys SET state = 'retired' WHERE state = 'published' AND retire_at IS NOT NULL AND retire_at <= $1",
        )
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn private_keys(&mut self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        self.lock_keys().await?;
        let rows =
            sqlx::query("SELECT kid, private_der FROM signing_keys ORDER BY created_at, position")
                .fetch_all(&mut *self.tx)
                .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("kid"), r.get("private_der")))
            .collect())
    }

    async fn set_private_key(&mut self, kid: &str, private_key: &[u8]) -> StoreResult<()> {
        self.lock_keys().await?;
        sqlx::query("UPDATE signing_keys SET private_der = $1 WHERE kid = $2")
            .bind(private_key)
            .bind(kid)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn login_failures_for_update(
        &mut self,
        user: &str,
        address: Option<&str>,
    ) -> StoreResult<LoginFailures> {
        // Advisory locks on the names (the rows may not exist yet), user before address, the
        // same order everywhere.
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(LOCK_LOGIN_USER)
            .bind(user)
            .execute(&mut *self.tx)
            .await?;
        if let Some(address) = address {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(LOCK_LOGIN_ADDRESS)
                .bind(address)
                .execute(&mut *self.tx)
                .await?;
        }
        login_failures(&mut self.tx, user, address).await
    }

    async fn set_login_failures(
        &mut self,
        user: &str,
        address: Option<&str>,
        records: &LoginFailures,
    ) -> StoreResult<()> {
        if let Some(u) = records.user {
            sqlx::query(
                "INSERT INTO login_user_failures (username, failures, last_failure, forget_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (username) DO UPDATE SET failures = EXCLUDED.failures,
                   last_failure = EXCLUDED.last_failure, forget_at = EXCLUDED.forget_at",
            )
            .bind(user)
            .bind(u.failures)
            .bind(u.last_failure)
            .bind(u.forget_at)
            .execute(&mut *self.tx)
            .await?;
        }
        if let (Some(address), Some(a)) = (address, records.address) {
            sqlx::query(
                "INSERT INTO login_address_failures (address, failures, window_start, locked_until, forget_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (address) DO UPDATE SET failures = EXCLUDED.failures,
                   window_start = EXCLUDED.window_start, locked_until = EXCLUDED.locked_until,
                   forget_at = EXCLUDED.forget_at",
            )
            .bind(address)
            .bind(a.failures)
            .bind(a.window_start)
            .bind(a.locked_until)
            .bind(a.forget_at)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn record_cutoff(&mut self, cutoff: &NewCutoff<'_>) -> StoreResult<bool> {
        let changed = cutoffs::record_cutoff(&mut self.tx, cutoff).await?;
        self.revoked |= changed;
        Ok(changed)
    }

    async fn record_logout_jti(
        &mut self,
        iss: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        cutoffs::record_logout_jti(&mut self.tx, iss, jti, expires_at, now).await
    }

    async fn record_received_set(
        &mut self,
        transmitter: &str,
        jti: &str,
        digest: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<crate::store::SetReceipt> {
        super::ssf_received::record_received_set(
            &mut self.tx,
            transmitter,
            jti,
            digest,
            expires_at,
            now,
        )
        .await
    }

    async fn deny_federated_jti(&mut self, jti: &str, exp: i64, now: i64) -> StoreResult<()> {
        self.insert_revocation("jti", jti, exp, now).await
    }
}
