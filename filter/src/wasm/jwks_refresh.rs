//! Keeping every provider's JWKS fresh, once per Envoy: on each tick, any thread that finds the
//! shared entry due takes the fetch lease (compare-and-swap) and fetches; the others only read the
//! result. The schedule and backoff are the pure [`crate::refresh`] logic.

use super::host::{self, log_at};
use super::worker::Worker;
use crate::config::JwksSource;
use crate::jwk::KeySet;
use crate::refresh::{Schedule, encode_lease, lease_is_free};
use std::time::Duration;

pub fn entry_key(source: &JwksSource) -> String {
    format!("oauth2gw/jwks/{}{}", source.cluster, source.path)
}

fn lease_key(source: &JwksSource) -> String {
    format!("oauth2gw/lease/jwks/{}{}", source.cluster, source.path)
}

/// Starts the fetches that are due and that this thread won the lease for. Returns the
/// `(callout token, provider index)` of each call made.
pub fn start_due_fetches(worker: &Worker, now_ms: u64) -> Vec<(u32, usize)> {
    let mut started = Vec::new();
    for (index, provider) in worker.config.providers.iter().enumerate() {
        let Some(source) = &provider.jwks else {
            continue;
        };
        let due = match host::shared_get(&entry_key(source)) {
            Some((entry, _)) => Schedule::decode(&entry).0.is_due(now_ms),
            None => true,
        };
        if !due || !take_lease(source, now_ms) {
            continue;
        }
        let timeout = Duration::from_millis(source.timeout_ms);
        match host::dispatch_get(&source.cluster, &source.authority, &source.path, timeout) {
            Some(token) => started.push((token, index)),
            None => {
                worker.metrics.increment("jwks_fetch_failed");
                record_failure(source, now_ms);
                release_lease(source);
            }
        }
    }
    started
}

/// Takes the provider's fetch lease; `true` if this thread now holds it.
fn take_lease(source: &JwksSource, now_ms: u64) -> bool {
    let key = lease_key(source);
    let until = now_ms
        .saturating_add(source.timeout_ms)
        .saturating_add(1_000);
    match host::shared_get(&key) {
        Some((lease, cas)) => {
            lease_is_free(Some(&lease), now_ms)
                && host::shared_set(&key, &encode_lease(until), Some(cas))
        }
        // First use: create the entry free, then race for it with CAS like any other time. (Two
        // threads creating it at once may both fetch once; fetching is idempotent.)
        None => {
            host::shared_set(&key, &encode_lease(0), None)
                && host::shared_get(&key).is_some_and(|(lease, cas)| {
                    lease_is_free(Some(&lease), now_ms)
                        && host::shared_set(&key, &encode_lease(until), Some(cas))
                })
        }
    }
}

fn release_lease(source: &JwksSource) {
    host::shared_set(&lease_key(source), &encode_lease(0), None);
}

fn record_failure(source: &JwksSource, now_ms: u64) {
    let key = entry_key(source);
    let (schedule, payload) = match host::shared_get(&key) {
        Some((entry, _)) => {
            let (s, p) = Schedule::decode(&entry);
            (s, p.to_vec())
        }
        None => (Schedule::default(), Vec::new()),
    };
    let next = schedule.after_failure(now_ms, source.refresh_seconds.saturating_mul(1_000));
    host::shared_set(&key, &next.encode(&payload), None);
}

/// Handles the answer to a JWKS fetch: a usable document replaces the shared copy; anything else
/// keeps the previous keys and backs off.
pub fn finish_fetch(
    worker: &Worker,
    provider: usize,
    status: Option<u32>,
    body: &[u8],
    now_ms: u64,
) {
    let Some(p) = worker.config.providers.get(provider) else {
        return;
    };
    let Some(source) = &p.jwks else { return };
    let outcome = match status {
        Some(200) => KeySet::parse(body).map(|_| ()).map_err(|e| e.to_string()),
        Some(other) => Err(format!("HTTP status {other}")),
        None => Err("no response (timeout or connection failure)".to_owned()),
    };
    match outcome {
        Ok(()) => {
            let interval = source.refresh_seconds.saturating_mul(1_000);
            let entry = Schedule::after_success(now_ms, interval).encode(body);
            host::shared_set(&entry_key(source), &entry, None);
            worker.metrics.increment("jwks_fetch_ok");
            log_at!(
                Debug,
                "oauth2-gateway: provider {:?}: JWKS refreshed",
                p.name
            );
        }
        Err(why) => {
            record_failure(source, now_ms);
            worker.metrics.increment("jwks_fetch_failed");
            log_at!(
                Warn,
                "oauth2-gateway: provider {:?}: JWKS fetch from cluster {:?} {} failed: {why}; keeping previous keys",
                p.name,
                source.cluster,
                source.path
            );
        }
    }
    release_lease(source);
    worker.sync_keys();
}
