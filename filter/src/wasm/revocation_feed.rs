//! Polling the IDP's revocation feed once per Envoy (same lease scheme as the JWKS), and keeping
//! the shared denylist that every worker reads. Logouts through this gateway add to the same list,
//! so a token is refused on every worker of this Envoy at once, and on other Envoys at their next
//! poll.
//!
//! Shared data: `oauth2gw/revocations` = schedule line + denylist JSON; `oauth2gw/revocations/v` =
//! a small version stamp, read every tick, so workers copy the list only when it changed.

use super::host::{self, log_at};
use super::worker::Worker;
use crate::denylist::Denylist;
use crate::refresh::{Schedule, encode_lease, lease_is_free};
use crate::service_config::RevocationFeed;
use std::time::Duration;

pub const ENTRY_KEY: &str = "oauth2gw/revocations";
pub const VERSION_KEY: &str = "oauth2gw/revocations/v";
const LEASE_KEY: &str = "oauth2gw/lease/revocations";
const CAS_ATTEMPTS: usize = 8;

/// The current shared denylist and its schedule.
pub fn read_shared() -> (Schedule, Denylist, Option<u32>) {
    match host::shared_get(ENTRY_KEY) {
        Some((entry, cas)) => {
            let (schedule, payload) = Schedule::decode(&entry);
            (schedule, Denylist::decode(payload), Some(cas))
        }
        None => (Schedule::default(), Denylist::default(), None),
    }
}

/// Applies `change` to the shared denylist with compare-and-swap (retrying on concurrent
/// writers), then bumps the version stamp. Returns the list as written.
pub fn update_shared(
    now_ms: u64,
    mut change: impl FnMut(&mut Schedule, &mut Denylist),
) -> Option<Denylist> {
    for _ in 0..CAS_ATTEMPTS {
        let (mut schedule, mut list, cas) = read_shared();
        change(&mut schedule, &mut list);
        if list.prune(now_ms / 1_000) > 0 {
            log_at!(
                Error,
                "oauth2-gateway: denylist over its size cap; oldest entries dropped"
            );
        }
        if host::shared_set(ENTRY_KEY, &schedule.encode(&list.encode()), cas) {
            host::shared_set(VERSION_KEY, now_ms.to_string().as_bytes(), None);
            return Some(list);
        }
    }
    log_at!(
        Error,
        "oauth2-gateway: could not update the shared denylist (contention)"
    );
    None
}

pub fn start_due_poll(worker: &Worker, now_ms: u64) -> Option<u32> {
    let (feed, client) = (
        worker.config.revocation_feed.as_ref()?,
        worker.config.idp_client.as_ref()?,
    );
    let (schedule, list, _) = read_shared();
    if !schedule.is_due(now_ms) || !take_lease(feed, now_ms) {
        return None;
    }
    let path = match &list.cursor {
        Some(cursor) => format!(
            "{}{}since={cursor}",
            feed.endpoint.path,
            sep(&feed.endpoint.path)
        ),
        None => feed.endpoint.path.clone(),
    };
    let auth = client.basic_authorization();
    let e = &feed.endpoint;
    let headers = [
        (":method", "GET"),
        (":path", path.as_str()),
        (":authority", e.authority.as_str()),
        ("accept", "application/json"),
        ("authorization", auth.as_str()),
    ];
    let token = host::dispatch(
        &e.cluster,
        &headers,
        None,
        Duration::from_millis(e.timeout_ms),
    );
    if token.is_none() {
        record_failure(feed, now_ms);
        release_lease();
    }
    token
}

pub fn finish_poll(worker: &Worker, status: Option<u32>, body: &[u8], now_ms: u64) {
    let Some(feed) = &worker.config.revocation_feed else {
        return;
    };
    let outcome = match status {
        Some(200) => {
            let mut added = 0;
            let mut error = None;
            update_shared(now_ms, |schedule, list| {
                let mut next = list.clone();
                match next.apply_feed(body, now_ms / 1_000) {
                    Ok(n) => {
                        added = n;
                        *list = next;
                        *schedule = Schedule::after_success(now_ms, feed.poll_ms);
                    }
                    Err(e) => error = Some(e.to_string()),
                }
            });
            error.map_or(Ok(added), Err)
        }
        Some(other) => Err(format!("HTTP status {other}")),
        None => Err("no response (timeout or connection failure)".to_owned()),
    };
    match outcome {
        Ok(added) => {
            worker.metrics.increment("revocation_poll_ok");
            if added > 0 {
                log_at!(
                    Debug,
                    "oauth2-gateway: revocation feed: {added} new entries"
                );
            }
        }
        Err(why) => {
            worker.metrics.increment("revocation_poll_failed");
            record_failure(feed, now_ms);
            log_at!(
                Warn,
                "oauth2-gateway: revocation feed poll ({:?} {}) failed: {why}; enforcing the known list and retrying",
                feed.endpoint.cluster,
                feed.endpoint.path
            );
        }
    }
    release_lease();
    worker.sync_denylist();
}

fn record_failure(feed: &RevocationFeed, now_ms: u64) {
    update_shared(now_ms, |schedule, _| {
        *schedule = schedule.after_failure(now_ms, feed.poll_ms.max(1_000));
    });
}

fn take_lease(feed: &RevocationFeed, now_ms: u64) -> bool {
    let until = now_ms
        .saturating_add(feed.endpoint.timeout_ms)
        .saturating_add(1_000);
    let attempt = |lease: &[u8], cas| {
        lease_is_free(Some(lease), now_ms)
            && host::shared_set(LEASE_KEY, &encode_lease(until), Some(cas))
    };
    match host::shared_get(LEASE_KEY) {
        Some((lease, cas)) => attempt(&lease, cas),
        None => {
            host::shared_set(LEASE_KEY, &encode_lease(0), None)
                && host::shared_get(LEASE_KEY).is_some_and(|(lease, cas)| attempt(&lease, cas))
        }
    }
}

fn release_lease() {
    host::shared_set(LEASE_KEY, &encode_lease(0), None);
}

fn sep(path: &str) -> char {
    if path.contains('?') { '&' } else { '?' }
}
