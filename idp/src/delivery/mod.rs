//! Delivering security events in the background: the SSF transmitter's SETs (RFC 8935 push;
//! RFC 8936 poll reads the same outbox from its endpoint) and back-channel logout tokens.
//!
//! Two loops per process, both restartable at any point because everything they work from is
//! in the store:
//! - **fan-out**: woken by every committed revocation (the store's signal, every replica's on
//!   PostgreSQL) and once a second, it turns stored events into signed tokens in the outbox
//!   ([`crate::ssf::plan`]), in one transaction with deleting the events;
//! - **push**: takes due outbox rows (logout tokens, SETs of enabled push streams), claims each
//!   for one attempt (single winner across replicas; the claim already sets the retry time),
//!   POSTs it, and deletes it when the receiver accepted it, refused it for good, or the last
//!   attempt failed (logged and counted). Attempts run concurrently, each bounded by its
//!   timeout: a receiver that is down delays nothing but its own tokens.

mod push;

use crate::oauth::keys::KeyRing;
use crate::settings::Settings;
use crate::store::events::{DueDelivery, Target};
use crate::store::{RevocationSignal, Store};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use push::{Outcome, Pusher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What became of one delivery attempt: `channel` is `ssf_push` or `backchannel_logout`,
/// `outcome` `delivered`, `retry`, `refused` (the receiver said the token is bad: not retried)
/// or `dropped` (out of attempts); and `{channel="ssf", outcome="expired"}` counts stream SETs
/// dropped undelivered after `ssf.max_set_age_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub channel: &'static str,
    pub outcome: &'static str,
}

/// `idp_event_deliveries_total{channel, outcome}`.
pub type DeliveryCounters = Family<DeliveryLabels, Counter>;

/// Events fanned out per transaction.
const FAN_OUT_BATCH: i64 = 100;
/// Outbox rows taken per push round.
const PUSH_BATCH: i64 = 64;
/// How often the loops look again without a wake-up (retries come due, other processes).
const IDLE_CHECK: Duration = Duration::from_millis(250);
/// Fan-out rounds (at least a second each when idle) between two expiries of old SETs.
const EXPIRY_ROUNDS: u32 = 60;

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What the loops work with.
#[derive(Clone)]
pub struct Worker {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    /// The current key ring (a snapshot per fan-out).
    pub keys: Arc<dyn Fn() -> Arc<KeyRing> + Send + Sync>,
    pub counters: DeliveryCounters,
    /// Moved on whenever the outbox gained rows (long polls and the push loop wait on it).
    pub outbox: RevocationSignal,
}

impl Worker {
    /// Starts both loops; they run until the process ends.
    pub fn spawn(self) {
        let fan = self.clone();
        tokio::spawn(async move { fan.fan_out_loop().await });
        tokio::spawn(async move { self.push_loop().await });
    }

    /// Fans out every stored event now; gives how many were taken.
    pub async fn fan_out_now(&self) -> usize {
        // A read first: the fan-out's write transaction (SQLite's write lock) only when needed.
        if matches!(self.store.pending_events().await, Ok(0)) {
            return 0;
        }
        let mut total = 0;
        loop {
            let keys = (self.keys)();
            let settings = Arc::clone(&self.settings);
            let now = unix_seconds();
            let plan = move |event: &_, streams: &[_]| {
                crate::ssf::plan::deliveries(&settings, &keys, event, streams, now)
            };
            match self.store.fan_out(FAN_OUT_BATCH, now, &plan).await {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => {
                    tracing::warn!(error = %e, "fanning out security events failed; retrying");
                    break;
                }
            }
        }
        if total > 0 {
            self.outbox.notify();
        }
        total
    }

    /// Drops stream SETs older than `ssf.max_set_age_seconds` (logged and counted).
    pub async fn expire_now(&self) {
        let before = unix_seconds() - self.settings.ssf.max_set_age_seconds;
        match self.store.expire_stream_sets(before).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(
                    sets = n,
                    "undelivered SETs past ssf.max_set_age_seconds dropped"
                );
                self.counters
                    .get_or_create(&DeliveryLabels {
                        channel: "ssf",
                        outcome: "expired",
                    })
                    .inc_by(n);
            }
            Err(e) => tracing::warn!(error = %e, "dropping expired SETs failed"),
        }
    }

    async fn fan_out_loop(self) {
        let mut revoked = self.store.revocation_signal().subscribe();
        let mut rounds: u32 = 0;
        loop {
            if rounds.is_multiple_of(EXPIRY_ROUNDS) {
                self.expire_now().await;
            }
            rounds = rounds.wrapping_add(1);
            self.fan_out_now().await;
            tokio::select! {
                r = revoked.changed() => if r.is_err() { return },
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn push_loop(self) {
        let pusher = Pusher::default();
        let mut outbox = self.outbox.subscribe();
        loop {
            self.push_due(&pusher).await;
            tokio::select! {
                r = outbox.changed() => if r.is_err() { return },
                () = tokio::time::sleep(IDLE_CHECK) => {}
            }
        }
    }

    /// Claims every due row and starts its attempt (not waiting for it).
    async fn push_due(&self, pusher: &Pusher) {
        let now = unix_millis();
        let due = match self.store.due_deliveries(now, PUSH_BATCH).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "reading the event outbox failed");
                return;
            }
        };
        for row in due {
            let policy = match row.target {
                Target::Stream(_) => self.settings.ssf.push,
                Target::Client(_) => self.settings.backchannel_logout.delivery,
            };
            let attempt = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
            // Due again only after this attempt's timeout and the backoff: never two at once.
            let retry_at = now + millis(policy.timeout) + millis(policy.backoff(attempt));
            match self
                .store
                .claim_delivery(row.id, row.attempts, retry_at)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue, // another replica took it
                Err(e) => {
                    tracing::warn!(error = %e, "claiming an outbox row failed");
                    continue;
                }
            }
            let worker = self.clone();
            let pusher = pusher.clone();
            tokio::spawn(async move {
                let last = attempt >= policy.max_attempts;
                let outcome = pusher.attempt(&worker.settings, &row, policy.timeout).await;
                if matches!(outcome, Outcome::Failed(_)) && !last {
                    // failed before its timeout: the retry comes after the backoff alone
                    let at = unix_millis() + millis(policy.backoff(attempt));
                    if let Err(e) = worker
                        .store
                        .reschedule_delivery(row.id, row.attempts + 1, at)
                        .await
                    {
                        tracing::warn!(error = %e, "rescheduling a delivery failed; it keeps the later time");
                    }
                }
                let retry = matches!(outcome, Outcome::Failed(_)) && !last;
                worker.settle(&row, outcome, attempt, last).await;
                if retry {
                    // wake the push loop when the retry comes due (not at its next idle check)
                    tokio::time::sleep(policy.backoff(attempt)).await;
                    worker.outbox.notify();
                }
            });
        }
    }

    async fn settle(&self, row: &DueDelivery, outcome: Outcome, attempt: u32, last: bool) {
        let channel = match row.target {
            Target::Stream(_) => "ssf_push",
            Target::Client(_) => "backchannel_logout",
        };
        let (name, done) = match &outcome {
            Outcome::Delivered => ("delivered", true),
            Outcome::Refused(why) => {
                tracing::warn!(channel, jti = %row.jti, why = %why, "receiver refused the token; not retried");
                ("refused", true)
            }
            Outcome::Failed(why) if last => {
                tracing::error!(channel, jti = %row.jti, attempt, why = %why, "delivery failed; attempts used up, token dropped");
                ("dropped", true)
            }
            Outcome::Failed(why) => {
                tracing::warn!(channel, jti = %row.jti, attempt, why = %why, "delivery failed; will retry");
                ("retry", false)
            }
        };
        self.counters
            .get_or_create(&DeliveryLabels {
                channel,
                outcome: name,
            })
            .inc();
        if done && let Err(e) = self.store.delete_delivery(row.id).await {
            // The row comes due again and is sent once more: a duplicate, never a loss.
            tracing::warn!(error = %e, "removing a delivered outbox row failed");
        }
    }
}
