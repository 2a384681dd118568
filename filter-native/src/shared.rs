//! What one filter configuration shares across Envoy's threads, in plain process memory: the keys
//! and the denylist, each an immutable snapshot behind an [`ArcSwap`] (a request reads them without
//! a lock; the main thread, or a logout, publishes a new one whole). This is the native
//! counterpart of the Wasm glue's proxy-wasm shared data: one JWKS and one denylist per Envoy.

use crate::host::Wake;
use crate::metrics::Counters;
use crate::verifier::ParsedKeys;
use arc_swap::ArcSwap;
use filter::config::FilterConfig;
use filter::jose::jwk::KeySet;
use filter::shared_state::MemoryShared;
use filter::shared_state::denylist::Denylist;
use filter::shared_state::denylist_store::{self, Revocation};
use filter::shared_state::discovery::DiscoveredEndpoints;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Every provider's keys at one moment, with AWS-LC's parsed form of each.
pub struct KeySnapshot {
    /// `sets[i]`: provider `i`'s keys (inline first, then fetched).
    pub sets: Vec<KeySet>,
    /// Bumped on every change; a worker empties its verified-token cache when it moves.
    pub generation: u64,
    pub parsed: ParsedKeys,
}

impl KeySnapshot {
    pub fn new(sets: Vec<KeySet>, generation: u64) -> KeySnapshot {
        let parsed = ParsedKeys::build(&sets);
        KeySnapshot {
            sets,
            generation,
            parsed,
        }
    }
}

/// One configuration's shared state.
pub struct Gateway {
    /// Distinguishes configurations in per-thread state.
    pub id: u64,
    pub config: FilterConfig,
    /// Envoy's ids of the counters.
    pub counters: Counters,
    keys: ArcSwap<KeySnapshot>,
    /// The core's sharded denylist store, in process memory (the native counterpart of proxy-wasm
    /// shared data), and the snapshot every worker reads without a lock.
    store: MemoryShared,
    denylist: ArcSwap<Denylist>,
    /// Serialises writers of the denylist (the feed on the main thread, logouts on workers), so
    /// no update is lost, and holds their synced copy; readers never take it.
    denylist_writer: Mutex<Denylist>,
    /// Per provider: a worker saw a token with an unknown `kid` and asks for an early JWKS fetch.
    early_refresh: Vec<AtomicBool>,
    /// Per provider: the endpoints of its last accepted discovery document (published by the
    /// main thread, read by workers without a lock).
    discovered: Vec<ArcSwap<DiscoveredEndpoints>>,
    /// The core's DPoP replay cache (proof `jti`s), in process memory: every worker of this
    /// Envoy writes it with compare-and-set.
    pub replay: MemoryShared,
    /// Whether tokens wait for the revocation feed's first up-to-date read
    /// (`filter::shared_state::feed_sync::enforced`).
    sync_required: bool,
    /// The revocation feed was read up to date (a page with `more: false` applied); set once by
    /// the main thread after the page's revocations were published, never cleared.
    feed_synced: AtomicBool,
    /// The "not loaded yet" warning was logged.
    warned_not_loaded: AtomicBool,
    /// Requests held on another request's introspection of the same token, by the token's hash
    /// (`filter::validation::introspection_flight`), on any worker.
    waiters: Mutex<HashMap<u64, Vec<Arc<dyn Wake>>>>,
}

/// Shards pruned per call of [`Gateway::prune_denylist`], bounding one poll's work.
const PRUNE_SHARDS_PER_CALL: usize = 256;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Gateway {
    /// Holds a request until the introspection of `hash` in flight elsewhere ends.
    pub fn wait_for_introspection(&self, hash: u64, waker: Arc<dyn Wake>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        waiters.entry(hash).or_default().push(waker);
    }

    /// The introspection of `hash` ended: wakes every request held on it.
    pub fn introspection_ended(&self, hash: u64) {
        let woken = self
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&hash);
        for waker in woken.into_iter().flatten() {
            waker.wake();
        }
    }

    pub fn new(config: FilterConfig, counters: Counters) -> Gateway {
        let sets = config
            .providers
            .iter()
            .map(|p| p.inline_keys.clone().unwrap_or_default())
            .collect();
        let early_refresh = config
            .providers
            .iter()
            .map(|_| AtomicBool::new(false))
            .collect();
        let discovered = config
            .providers
            .iter()
            .map(|_| ArcSwap::from_pointee(DiscoveredEndpoints::default()))
            .collect();
        let replay = MemoryShared::default();
        if config.dpop_algs.is_some() || config.backchannel_logout.is_some() {
            filter::validation::dpop::replay::prepare(&replay);
        }
        Gateway {
            replay,
            sync_required: filter::shared_state::feed_sync::enforced(&config),
            feed_synced: AtomicBool::new(false),
            warned_not_loaded: AtomicBool::new(false),
            waiters: Mutex::new(HashMap::new()),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            config,
            counters,
            keys: ArcSwap::from_pointee(KeySnapshot::new(sets, 0)),
            denylist: ArcSwap::from_pointee(Denylist::default()),
            store: MemoryShared::default(),
            denylist_writer: Mutex::new(Denylist::default()),
            discovered,
            early_refresh,
        }
    }

    /// Provider `provider`'s endpoints from its discovery document, as last accepted (all `None`
    /// before that, or without discovery).
    pub fn discovered(&self, provider: usize) -> Arc<DiscoveredEndpoints> {
        self.discovered
            .get(provider)
            .map(ArcSwap::load_full)
            .unwrap_or_default()
    }

    /// Publishes provider `provider`'s discovered endpoints (the main thread).
    pub fn publish_discovered(&self, provider: usize, endpoints: DiscoveredEndpoints) {
        if let Some(slot) = self.discovered.get(provider) {
            slot.store(Arc::new(endpoints));
        }
    }

    pub fn keys(&self) -> arc_swap::Guard<Arc<KeySnapshot>> {
        self.keys.load()
    }

    pub fn publish_keys(&self, snapshot: KeySnapshot) {
        self.keys.store(Arc::new(snapshot));
    }

    pub fn denylist(&self) -> arc_swap::Guard<Arc<Denylist>> {
        self.denylist.load()
    }

    /// Whether the revocation feed was read up to date.
    pub fn feed_synced(&self) -> bool {
        self.feed_synced.load(Ordering::Acquire)
    }

    /// Whether a worker may trust the denylist with a token: no initial sync is required, or the
    /// feed was read up to date. Read before [`Gateway::denylist`]: a worker that sees it set
    /// then loads a snapshot holding every revocation published before.
    pub fn revocations_loaded(&self) -> bool {
        !self.sync_required || self.feed_synced()
    }

    /// Records that the feed was read up to date (after the page's revocations were
    /// published); `true` the first time.
    pub fn mark_feed_synced(&self) -> bool {
        !self.feed_synced.swap(true, Ordering::AcqRel)
    }

    /// Whether the "not loaded yet" warning is still to be logged (`true` once).
    pub fn first_not_loaded_warning(&self) -> bool {
        !self.warned_not_loaded.swap(true, Ordering::Relaxed)
    }

    /// Records revocations (from the feed or a logout) in the process-wide store of the core's
    /// sharded denylist, then publishes a fresh snapshot for the workers. Writers are serialised,
    /// so concurrent updates are never lost; readers never wait. Returns how many were recorded.
    pub fn record_revocations(
        &self,
        revocations: &[Revocation],
        now_ms: u64,
    ) -> Result<usize, String> {
        let mut writer = self
            .denylist_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let report = denylist_store::record(&self.store, revocations, now_ms / 1_000)
            .map_err(|e| format!("the denylist could not be updated: {e}"))?;
        if report.refused > 0 {
            crate::log::log(
                crate::log::Level::Error,
                &format!(
                    "oauth2-gateway: denylist full: {} revocation(s) refused; their shards now refuse every token they cover (fail closed)",
                    report.refused
                ),
            );
        }
        writer.sync(&self.store);
        self.denylist.store(Arc::new(writer.clone()));
        Ok(revocations.len())
    }

    /// Drops entries whose tokens have expired (a bounded number of shards per call).
    pub fn prune_denylist(&self, now_ms: u64) {
        let mut writer = self
            .denylist_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if denylist_store::prune_expired(&self.store, now_ms / 1_000, PRUNE_SHARDS_PER_CALL)
            .is_ok_and(|report| report.shards_changed > 0)
        {
            writer.sync(&self.store);
            self.denylist.store(Arc::new(writer.clone()));
        }
    }

    /// What a logout confirmed by the provider revokes (see
    /// [`filter::logout::local_revocations`]): refused on every worker from the next request on.
    pub fn revoke(&self, revocations: &[Revocation], now_ms: u64) {
        if let Err(why) = self.record_revocations(revocations, now_ms) {
            crate::log::log(crate::log::Level::Error, &format!("oauth2-gateway: {why}"));
        }
    }

    /// Asks the main thread for an early JWKS fetch for `provider` (throttled there).
    pub fn request_early_refresh(&self, provider: usize) {
        if let Some(flag) = self.early_refresh.get(provider) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// Takes (and clears) `provider`'s early-refresh request.
    pub fn take_early_refresh(&self, provider: usize) -> bool {
        self.early_refresh
            .get(provider)
            .is_some_and(|f| f.swap(false, Ordering::Relaxed))
    }

    /// The provider a token names in `iss`, if any; used to aim an early refresh.
    pub fn provider_of(&self, token_iss: &str) -> Option<usize> {
        self.config
            .providers
            .iter()
            .position(|p| p.issuer == token_iss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> Gateway {
        let config = FilterConfig::from_json(
            br#"{"providers":[{"issuer":"https://idp","audiences":["api"],"algorithms":["ES256"],
                 "jwks":{"cluster":"idp","path":"/jwks"}}]}"#,
        );
        Gateway::new(
            config.unwrap_or_else(|e| panic!("{e}")),
            Counters::default(),
        )
    }

    use filter::shared_state::denylist::IdKind;

    #[test]
    fn concurrent_revocations_are_all_kept() {
        let gw = Arc::new(gateway());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let gw = Arc::clone(&gw);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let jti = format!("jti-{t}-{i}");
                        gw.revoke(&[Revocation::new(IdKind::Jti, &jti, u64::MAX / 2)], 0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let list = gw.denylist();
        assert_eq!(list.len(), 400);
        assert!(list.is_revoked(Some("jti-7-49"), None));
    }

    #[test]
    fn an_early_refresh_request_is_taken_once() {
        let gw = gateway();
        assert!(!gw.take_early_refresh(0));
        gw.request_early_refresh(0);
        gw.request_early_refresh(5); // no such provider: ignored
        assert!(gw.take_early_refresh(0));
        assert!(!gw.take_early_refresh(0));
    }
}
