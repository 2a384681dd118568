//! Polling the IDP's revocation feed once per Envoy (the same lease and schedule as the JWKS),
//! into the shared denylist every worker reads ([`crate::shared_state::denylist_store`]). Logouts through this
//! gateway add to the same list, so a token is refused on every worker of this Envoy at once, and
//! on other Envoys at their next poll.
//!
//! The feed's schedule entry keeps the cursor as its payload; it is moved only after the page's
//! revocations are stored, so a page is never skipped (a page applied twice changes nothing).
//! A page with `more: false` then marks the feed as read up to date for every worker
//! ([`crate::shared_state::feed_sync`]); until then polls are not long-polled.

use super::host::{self, log_at};
use super::shared_data::HostShared;
use super::worker::Worker;
use crate::shared_state::denylist_store;
use crate::shared_state::feed_page::FeedPage;
use crate::shared_state::feed_poll;
use crate::shared_state::feed_sync;
use crate::shared_state::lease::HeldLease;
use crate::shared_state::refresh::{self, JobKeys};
use std::time::Duration;

/// Shards whose entries died that one poll prunes at most (bounds the poller's work).
const PRUNE_SHARDS_PER_POLL: usize = 256;

fn job() -> JobKeys {
    JobKeys {
        schedule: "oauth2gw/denylist2/feed".to_owned(),
        lease: "oauth2gw/lease/revocations".to_owned(),
    }
}

/// A poll in flight: its callout token, its lease, and whether it asked to be held.
pub struct StartedPoll {
    pub token: u32,
    pub lease: HeldLease,
    pub long: bool,
}

pub fn start_due_poll(worker: &Worker, now_ms: u64) -> Option<StartedPoll> {
    let (feed, client) = (
        worker.config.revocation_feed.as_ref()?,
        worker.config.idp_client.as_ref()?,
    );
    let job = job();
    let long = feed_poll::is_long(feed, worker.feed_synced());
    let timeout_ms = feed_poll::timeout_ms(feed, long);
    let lease = job.start_if_due(&HostShared, now_ms, timeout_ms.saturating_add(1_000))?;
    let (_, cursor) = refresh::read(&HostShared, &job.schedule);
    let path = feed_poll::request_path(feed, std::str::from_utf8(&cursor).ok(), long);
    let auth = client.basic_authorization();
    let e = &feed.endpoint;
    let headers = [
        (":method", "GET"),
        (":path", path.as_str()),
        (":authority", e.authority.as_str()),
        ("accept", "application/json"),
        ("authorization", auth.as_str()),
    ];
    match host::dispatch(
        &e.cluster,
        &headers,
        None,
        Duration::from_millis(timeout_ms),
    ) {
        Some(token) => Some(StartedPoll { token, lease, long }),
        None => {
            record_failure(worker, now_ms);
            let _ = lease.release(&HostShared);
            None
        }
    }
}

/// The answer to a poll (`long` or not) started at `started_ms`; whether the next one may start
/// at once ([`feed_poll::at_once`]).
pub fn finish_poll(
    worker: &Worker,
    (lease, long): (HeldLease, bool),
    started_ms: u64,
    status: Option<u32>,
    body: &[u8],
    now_ms: u64,
) -> bool {
    let Some(feed) = &worker.config.revocation_feed else {
        return false;
    };
    let mut at_once = false;
    let outcome = match status {
        Some(200) => FeedPage::parse(body)
            .map_err(|e| e.to_string())
            .and_then(|page| {
                let stored = worker.record_revocations(&page.revocations, now_ms);
                if !stored {
                    return Err("the shared denylist could not be updated".to_owned());
                }
                let answered = feed_poll::Answered {
                    entries: page.revocations.len(),
                    more: page.more,
                };
                let next_ms = feed_poll::next_interval_ms(
                    feed,
                    long,
                    answered,
                    now_ms.saturating_sub(started_ms),
                );
                let (_, before) = refresh::read(&HostShared, &job().schedule);
                at_once = feed_poll::at_once(
                    next_ms,
                    page.revocations.len(),
                    before != page.cursor.as_bytes(),
                );
                job()
                    .record_success(&HostShared, now_ms, next_ms, page.cursor.as_bytes())
                    .map_err(|e| e.to_string())?;
                // Revocations and cursor stored: now (not before) the list is up to date.
                if feed_sync::completes_sync(&page) {
                    worker.mark_feed_synced();
                }
                Ok(page.revocations.len())
            }),
        Some(other) => Err(format!("HTTP status {other}")),
        None => Err("no response (timeout or connection failure)".to_owned()),
    };
    match outcome {
        Ok(added) => {
            worker.metrics.increment("revocation_poll_ok");
            if added > 0 {
                log_at!(Debug, "oauth2-gateway: revocation feed: {added} entries");
            }
            match denylist_store::prune_expired(&HostShared, now_ms / 1_000, PRUNE_SHARDS_PER_POLL)
            {
                Ok(report) => worker.note_refused(report.refused),
                Err(why) => log_at!(Warn, "oauth2-gateway: denylist pruning deferred: {why}"),
            }
        }
        Err(why) => {
            worker.metrics.increment("revocation_poll_failed");
            record_failure(worker, now_ms);
            log_at!(
                Warn,
                "oauth2-gateway: revocation feed poll ({:?} {}) failed: {why}; enforcing the known list and retrying",
                feed.endpoint.cluster,
                feed.endpoint.path
            );
        }
    }
    let _ = lease.release(&HostShared);
    worker.sync_denylist();
    at_once
}

fn record_failure(worker: &Worker, now_ms: u64) {
    let Some(feed) = &worker.config.revocation_feed else {
        return;
    };
    if let Err(why) = job().record_failure(&HostShared, now_ms, feed.poll_ms.max(1_000)) {
        log_at!(
            Warn,
            "oauth2-gateway: could not record the feed's backoff: {why}"
        );
    }
}
