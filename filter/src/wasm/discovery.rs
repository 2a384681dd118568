//! Discovery providers, once per Envoy: the thread that wins a provider's lease (the JWKS
//! machinery's schedule and lease, [`crate::shared_state::discovery::DiscoveryShare`]) fetches the discovery
//! document, stores it in shared data when the core accepts it, then fetches the keys from the
//! resolved `jwks_uri` under the same lease ([`super::jwks_refresh::finish_fetch`] ends the job).
//! A refused or failed document keeps the last good one, whose `jwks_uri` is used for the keys.

use super::host::{self, log_at};
use super::jwks_refresh::record_failure;
use super::shared_data::HostShared;
use super::worker::Worker;
use crate::shared_state::discovery::{self, DiscoveryError};
use crate::shared_state::lease::HeldLease;
use std::time::Duration;

/// Starts the document fetches that are due and that this thread won the lease for: the
/// `(callout token, provider index, lease)` of each call made.
pub fn start_due_fetches(worker: &Worker, now_ms: u64) -> Vec<(u32, usize, HeldLease)> {
    let mut started = Vec::new();
    for (index, (provider, share)) in worker
        .config
        .providers
        .iter()
        .zip(&worker.discovery)
        .enumerate()
    {
        let (Some(d), Some(share)) = (&provider.discovery, share) else {
            continue;
        };
        // The lease covers both calls: the document, then the keys.
        let hold_ms = d.source.timeout_ms.saturating_mul(2).saturating_add(1_000);
        let Some(lease) = share.jwks.job.start_if_due(&HostShared, now_ms, hold_ms) else {
            continue;
        };
        let s = &d.source;
        let timeout = Duration::from_millis(s.timeout_ms);
        match host::dispatch_get(&s.cluster, &s.authority, &s.path, timeout) {
            Some(token) => started.push((token, index, lease)),
            None => {
                worker.metrics.increment("discovery_failed");
                log_at!(
                    Error,
                    "oauth2-gateway: provider {:?}: cannot call cluster {:?} for {} (is the cluster defined?)",
                    provider.name,
                    s.cluster,
                    s.path
                );
                record_failure(worker, index, now_ms);
                let _ = lease.release(&HostShared);
            }
        }
    }
    started
}

/// Handles the answer to a document fetch, then starts the keys' fetch (from the new document,
/// or the last good one). Returns that call's token with the lease, or `None` when the job
/// ended here (no usable document at all, or the call could not be made).
pub fn finish_document(
    worker: &Worker,
    index: usize,
    lease: HeldLease,
    status: Option<u32>,
    body: &[u8],
    now_ms: u64,
) -> Option<(u32, HeldLease)> {
    let (Some(p), Some(Some(share))) = (
        worker.config.providers.get(index),
        worker.discovery.get(index),
    ) else {
        let _ = lease.release(&HostShared);
        return None;
    };
    let fetched = match status {
        // Content the gateway refuses: the operator must act (logged at error level).
        Some(200) => discovery::resolve(p, body).map_err(|e: DiscoveryError| (true, e.to_string())),
        Some(other) => Err((false, format!("HTTP status {other}"))),
        None => Err((
            false,
            "no response (timeout or connection failure)".to_owned(),
        )),
    };
    let resolved = match fetched {
        Ok(resolved) => {
            if let Err(why) = share.store(&HostShared, body) {
                log_at!(
                    Warn,
                    "oauth2-gateway: provider {:?}: could not share the discovery document: {why}",
                    p.name
                );
            }
            worker.metrics.increment("discovery_ok");
            worker.sync_discovery();
            Some(resolved)
        }
        Err((refused, why)) => {
            worker.metrics.increment("discovery_failed");
            let (version, last) = share.read(&HostShared);
            let kept = (version > 0)
                .then(|| discovery::resolve(p, &last).ok())
                .flatten();
            let keeping = if kept.is_some() {
                "keeping the last good document"
            } else {
                "the provider has no keys: its tokens are refused"
            };
            let message = format!(
                "oauth2-gateway: provider {:?}: discovery document from cluster {:?} {}: {why}; {keeping}",
                p.name,
                p.discovery
                    .as_ref()
                    .map_or("", |d| d.source.cluster.as_str()),
                p.discovery.as_ref().map_or("", |d| d.source.path.as_str()),
            );
            if refused || kept.is_none() {
                log_at!(Error, "{message}");
            } else {
                log_at!(Warn, "{message}");
            }
            kept
        }
    };
    let Some(resolved) = resolved else {
        record_failure(worker, index, now_ms);
        let _ = lease.release(&HostShared);
        return None;
    };
    let j = &resolved.jwks;
    let timeout = Duration::from_millis(j.timeout_ms);
    match host::dispatch_get(&j.cluster, &j.authority, &j.path, timeout) {
        Some(token) => Some((token, lease)),
        None => {
            worker.metrics.increment("jwks_fetch_failed");
            log_at!(
                Error,
                "oauth2-gateway: provider {:?}: cannot call cluster {:?} for the discovered jwks_uri {} (is the cluster defined?)",
                p.name,
                j.cluster,
                j.path
            );
            record_failure(worker, index, now_ms);
            let _ = lease.release(&HostShared);
            None
        }
    }
}
