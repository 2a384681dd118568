//! Storage: everything the IDP keeps (codes, sessions, refresh tokens, revocations, DPoP proof
//! `jti`s, SSO sessions, consents, form tokens, login budgets, signing keys), behind [`Store`] and
//! [`Transaction`] so that another backend is one more implementation of these two traits and the
//! domain code (grants, sessions, keys) does not change. [`sqlite`] is the embedded default;
//! [`postgres`] is for several IDP replicas on one database. [`open`] picks one by the database URL.
//!
//! The contract every backend keeps:
//! - Nothing is acknowledged before it is durable: a [`Transaction`] is committed (synchronously
//!   on disk) before the caller answers, and one dropped without [`Transaction::commit`] leaves
//!   no trace — a refused request changes nothing.
//! - Transactions are serialisable where it matters: of two concurrent transactions that use the
//!   same authorization code ([`Transaction::use_code`]) or refresh token
//!   ([`Transaction::mark_refresh_used`]), exactly one wins.
//! - Revocation sequence numbers only grow, are never reused, and become visible in their
//!   order (an entry is never seen before every lower-numbered one is), so a gateway's cursor
//!   into the feed never skips an entry, whichever replica wrote it.
//! - Cut-offs (federation) are feed entries too, numbered and woken for like revocations.
//! - Every committed revocation wakes the [`Store::revocation_signal`] subscribers of every
//!   store on the same database (one process on SQLite; every replica on PostgreSQL).
//! - Failures a retry may not meet (database unreachable or restarting) are
//!   [`StoreError::is_unavailable`]; nothing is written by a transaction that failed.
//! - Secrets are stored only as digests: callers hand over hashes, never codes, tokens or cookies.
//!   Signing keys' private parts arrive sealed (the domain's `oauth::keys::encryption`).

mod error;
pub mod events;
pub mod migrations;
pub mod postgres;
mod records;
mod signal;
pub mod sqlite;
mod ssf_received;

pub use error::{StoreError, StoreResult};
pub use records::{
    AddressFailures, CodeUse, CutoffKey, FormToken, IssuedToken, LoginFailures, NewCode, NewCutoff,
    NewKey, NewRefreshToken, NewSession, NewSsoSession, Revocation, SsoRecord, StoredCode,
    StoredKey, StoredRefresh, UserFailures,
};
pub use signal::RevocationSignal;
pub use ssf_received::SetReceipt;

use async_trait::async_trait;
use std::sync::Arc;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    #[error("database {url:?}: no storage backend for this URL (supported: sqlite:, postgres:)")]
    UnsupportedUrl { url: String },
    #[error("database {url:?}: {source}")]
    Open {
        url: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("migrating database {url:?}: {source}")]
    Migrate {
        url: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Opens the store a database URL names (creating and migrating it if needed).
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreOpenError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if is_postgres_url(url) {
        Ok(Arc::new(postgres::PgStore::open(url).await?))
    } else {
        Err(StoreOpenError::UnsupportedUrl {
            url: url.to_owned(),
        })
    }
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Reads, single-statement writes, and the start of write transactions.
#[async_trait]
pub trait Store: Send + Sync + events::EventStore {
    /// Starts a write transaction (it holds the write lock from its first statement).
    async fn begin(&self) -> StoreResult<Box<dyn Transaction>>;

    /// Whether the access token `jti`, or its session `sid`, is in the revocation feed.
    async fn is_revoked(&self, jti: &str, sid: Option<&str>) -> StoreResult<bool>;
    /// Live revocations after `since` (all live ones when `None`), at most `limit`, in order;
    /// and the cursor to ask from next time, never past an entry that is not visible yet (one
    /// still being written by a transaction, on this replica or another).
    async fn revocations_since(
        &self,
        since: Option<i64>,
        now: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Revocation>, i64)>;
    /// Drops what nobody can use any more: expired access-token records, revocations, form
    /// tokens and DPoP proof `jti`s.
    async fn purge_expired(&self, now: i64) -> StoreResult<()>;

    /// The DPoP replay store (RFC 9449 §11.1), shared by every replica: records `id` (a digest
    /// naming one proof's `jti`) until `expires_at`; `true` if it was not recorded yet (or only
    /// by an entry expired at `now`), i.e. this is the proof's first use. Of two concurrent
    /// calls with the same `id`, exactly one gets `true`.
    async fn record_dpop_jti(&self, id: &str, expires_at: i64, now: i64) -> StoreResult<bool>;

    async fn insert_code(&self, code: &NewCode<'_>) -> StoreResult<()>;

    /// The live (not ended, not expired) single-sign-on session with this cookie digest.
    async fn find_sso_session(&self, id: &str, now: i64) -> StoreResult<Option<SsoRecord>>;
    /// The single-sign-on session a token session was started from, if any.
    async fn sso_of_token_session(&self, sid: &str) -> StoreResult<Option<String>>;
    async fn insert_sso_session(&self, session: &NewSsoSession<'_>) -> StoreResult<()>;
    /// A new authentication (time and methods) in an existing single-sign-on session.
    async fn reauthenticate_sso_session(
        &self,
        id: &str,
        auth_time: i64,
        amr: &str,
    ) -> StoreResult<()>;

    /// The scopes (space-separated) `sub` has granted `client_id` so far.
    async fn consented_scopes(&self, sub: &str, client_id: &str) -> StoreResult<Option<String>>;

    async fn insert_form_token(&self, token: &FormToken<'_>) -> StoreResult<()>;
    /// Deletes the form token if it was issued to `browser` for `purpose` and has not expired;
    /// `true` if it did (the token is used up).
    async fn consume_form_token(
        &self,
        hash: &str,
        browser: &str,
        purpose: &str,
        now: i64,
    ) -> StoreResult<bool>;

    /// Every signing key not retired, oldest first.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;

    /// Wakes on every committed revocation (by this store or, on a shared database, any other
    /// replica's); subscribe before reading the feed so that nothing committed after the read
    /// is missed. A wake-up may be spurious (e.g. after a lost database connection): read again.
    fn revocation_signal(&self) -> RevocationSignal;

    /// The login failures recorded for `user` and the client `address` (when known).
    async fn login_failures(&self, user: &str, address: Option<&str>)
    -> StoreResult<LoginFailures>;
    /// Forgets `user`'s failures (after a successful login).
    async fn clear_user_failures(&self, user: &str) -> StoreResult<()>;

    /// Records a cut-off in its own transaction, durably before it returns (see
    /// [`Transaction::record_cutoff`]); `true` if the feed changed.
    async fn record_cutoff(&self, cutoff: &NewCutoff<'_>) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let changed = tx.record_cutoff(cutoff).await?;
        tx.commit().await?;
        Ok(changed)
    }
}

/// A write transaction. Dropping it without [`Transaction::commit`] rolls it back.
#[async_trait]
pub trait Transaction: Send {
    async fn commit(self: Box<Self>) -> StoreResult<()>;

    /// Records an issued access token (its `jti` is unique).
    async fn record_issued(&mut self, token: &IssuedToken<'_>) -> StoreResult<()>;
    /// Puts an access token's `jti` in the revocation feed until `exp` (idempotent; a repeated
    /// revocation keeps its place and may extend the expiry).
    async fn revoke_jti(&mut self, jti: &str, exp: i64, now: i64) -> StoreResult<()>;
    /// Records the security event of revoking the access token `jti` that a client got for
    /// itself (client credentials: no user, no session, so not recorded as issued; `sub` and
    /// `client_id` from its claims), as [`Transaction::revoke_jti`] does for recorded tokens.
    /// Called before `revoke_jti`; a token revoked before, or recorded as issued, records
    /// nothing here.
    async fn client_token_revoked(
        &mut self,
        jti: &str,
        sub: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<()>;

    async fn create_session(&mut self, session: &NewSession<'_>) -> StoreResult<()>;
    /// Ends a token session: its refresh tokens stop working and its `sid` enters the
    /// revocation feed until `feed_exp` (so every gateway refuses its access tokens). Idempotent.
    async fn end_session(&mut self, sid: &str, feed_exp: i64, now: i64) -> StoreResult<()>;

    async fn insert_refresh_token(&mut self, token: &NewRefreshToken<'_>) -> StoreResult<()>;
    /// A stored refresh token with its session's state.
    async fn find_refresh_token(&mut self, hash: &[u8]) -> StoreResult<Option<StoredRefresh>>;
    /// Marks a refresh token used; `false` if it already was (a concurrent use won).
    async fn mark_refresh_used(&mut self, hash: &[u8], now: i64) -> StoreResult<bool>;

    /// Marks a code used and returns it, or says it was used before. Of two concurrent
    /// redemptions, exactly one sees [`CodeUse::First`].
    async fn use_code(&mut self, hash: &[u8], now: i64) -> StoreResult<CodeUse>;
    /// Records the token session a redeemed code's tokens went to.
    async fn set_code_session(&mut self, hash: &[u8], sid: &str) -> StoreResult<()>;

    /// Ends a single-sign-on session; gives the token sessions started from it that are still
    /// live (the caller ends them).
    async fn end_sso_session(&mut self, id: &str, now: i64) -> StoreResult<Vec<String>>;

    async fn consented_scopes(&mut self, sub: &str, client_id: &str)
    -> StoreResult<Option<String>>;
    /// Replaces the scopes `sub` has granted `client_id`.
    async fn set_consent(
        &mut self,
        sub: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> StoreResult<()>;

    async fn insert_key(&mut self, key: &NewKey<'_>) -> StoreResult<()>;
    async fn active_key(&mut self) -> StoreResult<Option<String>>;
    /// A key of `alg` that signs now (active) or stands by (published, with neither an
    /// activation nor a retirement scheduled: a key that signs ID tokens for clients asking for
    /// another algorithm than the active key's).
    async fn usable_key(&mut self, alg: &str) -> StoreResult<Option<String>>;
    /// The earliest published key due to start signing at `now`.
    async fn key_due(&mut self, now: i64) -> StoreResult<Option<String>>;
    /// The active key stops signing (it stays published until `retire_at`) and `kid` starts.
    async fn activate_key(&mut self, kid: &str, retire_at: i64) -> StoreResult<()>;
    /// Published keys past their retirement leave the JWKS.
    async fn retire_keys(&mut self, now: i64) -> StoreResult<()>;
    /// Every key's stored private part, retired keys included: `(kid, private_key)`.
    async fn private_keys(&mut self) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Replaces the stored private part of `kid` (re-sealing it).
    async fn set_private_key(&mut self, kid: &str, private_key: &[u8]) -> StoreResult<()>;

    /// The login failures of `user` and `address`, locked until the transaction ends (two
    /// concurrent failures, on any replica, both count).
    async fn login_failures_for_update(
        &mut self,
        user: &str,
        address: Option<&str>,
    ) -> StoreResult<LoginFailures>;
    /// Stores the records of [`Transaction::login_failures_for_update`] (a `None` leaves that
    /// record as it is).
    async fn set_login_failures(
        &mut self,
        user: &str,
        address: Option<&str>,
        records: &LoginFailures,
    ) -> StoreResult<()>;

    /// Puts a cut-off in the revocation feed (federation: a federated issuer's session or
    /// subject). Idempotent per `(iss, key, value)`: a later `cutoff` replaces the entry (with
    /// its `exp`) under a new feed number, so gateways that read the old one read it again; an
    /// equal or earlier one changes nothing. `true` if the feed changed. Its commit wakes the
    /// long polls like a revocation's.
    async fn record_cutoff(&mut self, cutoff: &NewCutoff<'_>) -> StoreResult<bool>;
    /// The replay store of back-channel logout tokens (OIDC BCL 1.0 §2.6 step 7): records
    /// `(iss, jti)` until `expires_at`; `true` if it was not recorded yet (or only by an entry
    /// expired at `now`). Of two concurrent transactions with the same token, one gets `true`.
    async fn record_logout_jti(
        &mut self,
        iss: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool>;

    /// The Shared Signals receiver's record of SETs (SSF 1.0, RFC 8417 `jti`): records
    /// `(transmitter, jti)` with `digest` (of the whole SET) until `expires_at`, unless already
    /// recorded (and not expired at `now`); says whether it was new, this same SET again, or
    /// another SET with that `jti`. Expired records are dropped on the way. Of two concurrent
    /// transactions with the same SET, one gets [`SetReceipt::New`].
    async fn record_received_set(
        &mut self,
        transmitter: &str,
        jti: &str,
        digest: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<SetReceipt>;
    /// Puts a federated issuer's access-token `jti` in the revocation feed until `exp` (as
    /// [`Transaction::revoke_jti`] does, but naming a token this IDP did not issue: no
    /// security event of its own is emitted for it).
    async fn deny_federated_jti(&mut self, jti: &str, exp: i64, now: i64) -> StoreResult<()>;
}
