//! Security events and their delivery (the SSF transmitter and the back-channel logout sender):
//! the records and the [`EventStore`] trait every backend implements.
//!
//! The contract:
//! - A [`SecurityEvent`] is written by the transaction that causes it
//!   ([`crate::store::Transaction::end_session`] of a live session,
//!   [`crate::store::Transaction::revoke_jti`] of a token not revoked before,
//!   [`crate::store::Transaction::client_token_revoked`] for a client's token for itself), so it
//!   is durable exactly when the change is: nothing is lost to a crash after the commit.
//! - [`EventStore::fan_out`] turns events into outbox rows and deletes them in one transaction;
//!   of two replicas fanning out at once, each event goes to exactly one.
//! - An outbox row leaves only when acknowledged ([`EventStore::ack`], [`EventStore::delete_delivery`])
//!   or given up on; [`EventStore::claim_delivery`] is single-winner, so two replicas never push
//!   the same attempt.

use super::StoreResult;
use async_trait::async_trait;

/// What an event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A token session ended (logout, revocation, a replayed code or refresh token).
    SessionRevoked,
    /// An access token was revoked (RFC 7009).
    TokenRevoked,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SessionRevoked => "session_revoked",
            EventKind::TokenRevoked => "token_revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "session_revoked" => Some(EventKind::SessionRevoked),
            "token_revoked" => Some(EventKind::TokenRevoked),
            _ => None,
        }
    }
}

/// An event waiting to be fanned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    pub id: i64,
    pub kind: EventKind,
    pub sid: Option<String>,
    pub sub: String,
    pub client_id: String,
    /// The revoked access token's `jti` ([`EventKind::TokenRevoked`]).
    pub jti: Option<String>,
    pub occurred_at: i64,
}

/// A stored SSF stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub stream_id: String,
    /// The receiver: the OAuth client that created the stream.
    pub client_id: String,
    /// `urn:ietf:rfc:8935` (push) or `urn:ietf:rfc:8936` (poll).
    pub delivery_method: String,
    /// The stream's configuration as JSON (the domain's `ssf::stream::StreamConfig`).
    pub config: String,
    /// `enabled`, `paused` or `disabled`.
    pub status: String,
    pub reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a new outbox row goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An SSF stream (polled or pushed, per the stream).
    Stream(String),
    /// A client's back-channel logout URI.
    Client(String),
}

/// A signed token to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub target: Target,
    pub jti: String,
    pub token: String,
}

/// An outbox row due for a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: i64,
    pub target: Target,
    pub jti: String,
    pub token: String,
    pub attempts: i64,
    /// The stream's configuration (JSON) for a stream row.
    pub stream_config: Option<String>,
}

/// How [`EventStore::fan_out`] maps one event to deliveries, given the streams that take
/// events (enabled or paused ones: a paused stream keeps its events for later).
pub type Plan<'a> = dyn Fn(&SecurityEvent, &[StreamRecord]) -> Vec<NewDelivery> + Send + Sync + 'a;

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Takes up to `limit` events, oldest first, stores the deliveries `plan` makes of each and
    /// deletes them, in one transaction; gives how many events it took.
    async fn fan_out(&self, limit: i64, now: i64, plan: &Plan<'_>) -> StoreResult<usize>;
    /// Events not fanned out yet.
    async fn pending_events(&self) -> StoreResult<i64>;

    /// Creates the stream; `false` if its client already has one (nothing written).
    async fn create_stream(&self, stream: &StreamRecord) -> StoreResult<bool>;
    /// The stream of `client_id`, if any.
    async fn stream_of_client(&self, client_id: &str) -> StoreResult<Option<StreamRecord>>;
    /// Replaces the stored stream with the same `stream_id` and `client_id`; `false` if there
    /// is none.
    async fn update_stream(&self, stream: &StreamRecord) -> StoreResult<bool>;
    /// Deletes the stream and its undelivered SETs; `false` if there was none.
    async fn delete_stream(&self, stream_id: &str, client_id: &str) -> StoreResult<bool>;

    /// Stores one delivery (a verification SET, a `stream-updated` SET).
    async fn enqueue(&self, delivery: &NewDelivery, now: i64) -> StoreResult<()>;
    /// Up to `limit` undelivered SETs of the stream, oldest first: `(jti, token)`.
    async fn stream_sets(&self, stream_id: &str, limit: i64) -> StoreResult<Vec<(String, String)>>;
    /// Deletes the stream's SETs named by `jtis` (acknowledged, or refused with `setErrs`);
    /// gives how many were there.
    async fn ack(&self, stream_id: &str, jtis: &[String]) -> StoreResult<u64>;

    /// Rows due at `now_ms` for a push: logout tokens, and SETs of enabled push streams.
    async fn due_deliveries(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<DueDelivery>>;
    /// Takes the row for one attempt: its attempt count goes from `attempts` to `attempts + 1`
    /// and its next attempt to `next_attempt_ms` (the retry, should this one fail). `false` if
    /// another worker took it first.
    async fn claim_delivery(
        &self,
        id: i64,
        attempts: i64,
        next_attempt_ms: i64,
    ) -> StoreResult<bool>;
    /// After a failed attempt (the row's count is still `attempts`): the retry comes due at
    /// `next_attempt_ms` rather than at the claim's (timeout-padded) time.
    async fn reschedule_delivery(
        &self,
        id: i64,
        attempts: i64,
        next_attempt_ms: i64,
    ) -> StoreResult<()>;
    /// The row is done with (delivered, refused for good, or out of attempts).
    async fn delete_delivery(&self, id: i64) -> StoreResult<()>;

    /// Deletes the stream SETs stored before `created_before` (a receiver that stopped polling,
    /// a paused stream: the outbox stays bounded); gives how many.
    async fn expire_stream_sets(&self, created_before: i64) -> StoreResult<u64>;

    /// The live (not ended, not expired) token sessions of `sub` (for an administrator ending
    /// them all).
    async fn live_sessions_of_subject(&self, sub: &str, now: i64) -> StoreResult<Vec<String>>;
}
