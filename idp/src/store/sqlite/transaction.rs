//! [`Transaction`] on SQLite: one `BEGIN IMMEDIATE` transaction per value.

use super::{consented_scopes, cutoffs, events, login_failures};
use crate::store::{
    CodeUse, IssuedToken, LoginFailures, NewCutoff, NewKey, NewRefreshToken, NewSession,
    RevocationSignal, StoreResult, StoredCode, StoredRefresh, Transaction,
};
use async_trait::async_trait;
use sqlx::{Row, Sqlite};

pub(super) struct SqliteTransaction {
    pub(super) tx: sqlx::Transaction<'static, Sqlite>,
    pub(super) signal: RevocationSignal,
    /// Whether the transaction added to the revocation feed (its commit wakes the long polls).
    pub(super) revoked: bool,
}

#[async_trait]
impl Transaction for SqliteTransaction {
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await?;
        if self.revoked {
            self.signal.notify();
        }
        Ok(())
    }

    async fn record_issued(&mut self, t: &IssuedToken<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO issued_tokens (jti, client_id, sub, sid, scope, issued_at, exp) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
        self.revoked = true;
        events::token_revoked(&mut self.tx, jti, now).await?;
        insert_revocation(&mut self.tx, "jti", jti, exp, now).await
    }

    async fn client_token_revoked(
        &mut self,
        jti: &str,
        sub: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        events::client_token_revoked(&mut self.tx, jti, sub, client_id, now).await
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
        events::session_ended(&mut self.tx, sid, now).await?;
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
        self.revoked = true;
        insert_revocation(&mut self.tx, "sid", sid, feed_exp, now).await
    }

    async fn insert_refresh_token(&mut self, t: &NewRefreshToken<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, family, sid, client_id, sub, scope, issued_at, expires_at, dpop_jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        let row = sqlx::query(
            "SELECT r.family, r.sid, r.client_id, r.sub, r.scope, r.expires_at, r.used_at, r.revoked_at, s.ended_at, s.expires_at AS s_exp, r.dpop_jkt
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
            dpop_jkt: r.get("dpop_jkt"),
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

    async fn login_failures_for_update(
        &mut self,
        user: &str,
        address: Option<&str>,
    ) -> StoreResult<LoginFailures> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        Ok(login_failures(&mut self.tx, user, address).await?)
    }

    async fn set_login_failures(
        &mut self,
        user: &str,
        address: Option<&str>,
        records: &LoginFailures,
    ) -> StoreResult<()> {
        if let Some(u) = records.user {
            sqlx::query(
                "INSERT INTO login_user_failures (username, failures, last_failure, forget_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (username) DO UPDATE SET failures = excluded.failures,
                   last_failure = excluded.last_failure, forget_at = excluded.forget_at",
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
                "INSERT INTO login_address_failures (address, failures, window_start, locked_until, forget_at) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (address) DO UPDATE SET failures = excluded.failures,
                   window_start = excluded.window_start, locked_until = excluded.locked_until,
                   forget_at = excluded.forget_at",
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
        self.revoked = true;
        insert_revocation(&mut self.tx, "jti", jti, exp, now).await
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
         ON CONFLICT (kind, iss, value) DO UPDATE SET exp = MAX(exp, excluded.exp)",
    )
    .bind(kind)
    .bind(value)
    .bind(exp)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
