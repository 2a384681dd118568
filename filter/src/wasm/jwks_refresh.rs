//! Keeping every provider's JWKS fresh, once per Envoy: on each tick, any thread that finds a
//! provider's fetch due takes its lease and fetches; the others only read the result. Schedule,
//! lease and versioned keys are the core's ([`crate::shared_state::jwks_share`], [`crate::shared_state::refresh`],
//! [`crate::shared_state::lease`]).

use super::host::{self, log_at};
use super::shared_data::HostShared;
use super::worker::Worker;
use crate::jose::jwk::KeySet;
use crate::shared_state::Update;
use crate::shared_state::lease::HeldLease;
use std::time::Duration;

/// Starts the fetches that are due and that this thread won the lease for. Returns the
/// `(callout token, provider index, lease)` of each call made.
pub fn start_due_fetches(worker: &Worker, now_ms: u64) -> Vec<(u32, usize, HeldLease)> {
    let mut started = Vec::new();
    for (index, (provider, share)) in worker.config.providers.iter().zip(&worker.jwks).enumerate() {
        let (Some(source), Some(share)) = (&provider.jwks, share) else {
            continue;
        };
        let hold_ms = source.timeout_ms.saturating_add(1_000);
        let Some(lease) = share.job.start_if_due(&HostShared, now_ms, hold_ms) else {
            continue;
        };
        let timeout = Duration::from_millis(source.timeout_ms);
        match host::dispatch_get(&source.cluster, &source.authority, &source.path, timeout) {
            Some(token) => started.push((token, index, lease)),
            None => {
                worker.metrics.increment("jwks_fetch_failed");
                record_failure(worker, index, now_ms);
                let _ = lease.release(&HostShared);
            }
        }
    }
    started
}

/// Backs off provider `provider`'s fetch (of its JWKS, or its discovery document and keys).
pub(super) fn record_failure(worker: &Worker, provider: usize, now_ms: u64) {
    let (Some(Some(share)), Some(p)) = (
        worker.jwks.get(provider),
        worker.config.providers.get(provider),
    ) else {
        return;
    };
    let interval = p
        .key_source()
        .map_or(0, |s| s.refresh_seconds.saturating_mul(1_000));
    if let Err(why) = share.job.record_failure(&HostShared, now_ms, interval) {
        log_at!(
            Warn,
            "oauth2-gateway: provider {:?}: could not record the JWKS backoff: {why}",
            p.name
        );
    }
}

/// Handles the answer to a JWKS fetch: a usable document that differs from the shared copy
/// replaces it; anything else keeps the previous keys and backs off.
pub fn finish_fetch(
    worker: &Worker,
    provider: usize,
    lease: HeldLease,
    status: Option<u32>,
    body: &[u8],
    now_ms: u64,
) {
    let (Some(p), Some(Some(share))) = (
        worker.config.providers.get(provider),
        worker.jwks.get(provider),
    ) else {
        return;
    };
    let Some(source) = p.key_source() else { return };
    let from = match &p.discovery {
        Some(_) => "the discovered jwks_uri".to_owned(),
        None => format!("cluster {:?} {}", source.cluster, source.path),
    };
    let outcome = match status {
        Some(200) => KeySet::parse(body)
            .map_err(|e| e.to_string())
            .and_then(|_| share.store(&HostShared, body).map_err(|e| e.to_string())),
        Some(other) => Err(format!("HTTP status {other}")),
        None => Err("no response (timeout or connection failure)".to_owned()),
    };
    match outcome {
        Ok(update) => {
            let interval = source.refresh_seconds.saturating_mul(1_000);
            if let Err(why) = share.job.record_success(&HostShared, now_ms, interval, b"") {
                log_at!(
                    Warn,
                    "oauth2-gateway: provider {:?}: could not record the JWKS schedule: {why}",
                    p.name
                );
            }
            worker.metrics.increment("jwks_fetch_ok");
            log_at!(
                Debug,
                "oauth2-gateway: provider {:?}: JWKS refreshed ({})",
                p.name,
                if matches!(update, Update::Changed(_)) {
                    "new keys"
                } else {
                    "unchanged"
                }
            );
        }
        Err(why) => {
            record_failure(worker, provider, now_ms);
            worker.metrics.increment("jwks_fetch_failed");
            log_at!(
                Warn,
                "oauth2-gateway: provider {:?}: JWKS fetch from {from} failed: {why}; keeping previous keys",
                p.name
            );
        }
    }
    let _ = lease.release(&HostShared);
    worker.sync_keys();
}
