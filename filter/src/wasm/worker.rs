//! What one VM (Envoy's main thread or a worker) knows: the validated configuration, its copy of
//! every provider's keys and of the denylist, and its metrics. Shared by the root context and its
//! HTTP contexts. The shared-state protocol itself is the core's ([`crate::shared_state`]).

use super::host::log_at;
use super::metrics::Metrics;
use super::native_verifier::EnvoyVerifier;
use super::shared_data::HostShared;
use crate::admission::token_cache::TokenCache;
use crate::config::FilterConfig;
use crate::jose::jwk::KeySet;
use crate::jose::key_store::ProviderKeys;
use crate::logout::backchannel_receiver::VerificationBudget;
use crate::shared_state::denylist::Denylist;
use crate::shared_state::denylist_store::{self, Revocation};
use crate::shared_state::discovery::{DiscoveredEndpoints, DiscoveryShare};
use crate::shared_state::feed_sync;
use crate::shared_state::jwks_share::JwksShare;
use std::cell::{Cell, Ref, RefCell};

pub struct Worker {
    pub config: FilterConfig,
    keys: RefCell<Vec<ProviderKeys>>,
    /// Each provider's shared JWKS entries (`None`: inline keys only); a discovery provider's
    /// are those of its discovered `jwks_uri` ([`DiscoveryShare::jwks`]).
    pub jwks: Vec<Option<JwksShare>>,
    /// Each discovery provider's shared document entry.
    pub discovery: Vec<Option<DiscoveryShare>>,
    /// This VM's view of each provider's discovered endpoints, with the document version it
    /// was resolved from (see [`Worker::discovered`]).
    discovered: RefCell<Vec<(u64, DiscoveredEndpoints)>>,
    denylist: RefCell<Denylist>,
    pub cache: RefCell<TokenCache>,
    pub metrics: Metrics,
    /// Envoy's native signature verification, when present.
    pub native: Option<EnvoyVerifier>,
    /// This worker's budget of back-channel logout signature checks.
    pub backchannel_budget: RefCell<VerificationBudget>,
    /// Whether tokens wait for the revocation feed's first up-to-date read
    /// ([`feed_sync::enforced`]).
    sync_required: bool,
    /// Whether this VM saw the feed read up to date (by any thread of this Envoy).
    feed_synced: feed_sync::Seen,
    /// The "not loaded yet" warning was logged by this VM.
    warned_not_loaded: Cell<bool>,
    /// This VM's requests held on an introspection in flight for their token (on any worker).
    pub followers: RefCell<Vec<Follower>>,
}

/// A request (HTTP context `context_id`) held until the introspection of `hash` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follower {
    pub context_id: u32,
    pub hash: u64,
}

impl Worker {
    pub fn new(config: FilterConfig) -> Self {
        let keys = config
            .providers
            .iter()
            .map(|p| ProviderKeys::new(p.inline_keys.clone()))
            .collect();
        let discovery: Vec<Option<DiscoveryShare>> = config
            .providers
            .iter()
            .map(|p| p.discovery.as_ref().map(DiscoveryShare::new))
            .collect();
        let jwks = config
            .providers
            .iter()
            .zip(&discovery)
            .map(|(p, d)| match (&p.jwks, d) {
                (Some(s), _) => Some(JwksShare::new(&s.cluster, &s.path)),
                (None, Some(d)) => Some(d.jwks.clone()),
                (None, None) => None,
            })
            .collect();
        let discovered = RefCell::new(vec![(0, DiscoveredEndpoints::default()); discovery.len()]);
        let cache = RefCell::new(TokenCache::new(config.cache_max_entries));
        let native = EnvoyVerifier::probe();
        if config.dpop_algs.is_some() || config.backchannel_logout.is_some() {
            // Before this VM serves a request (see `crate::validation::dpop::replay`).
            crate::validation::dpop::replay::prepare(&HostShared);
        }
        Worker {
            backchannel_budget: RefCell::default(),
            sync_required: feed_sync::enforced(&config),
            feed_synced: feed_sync::Seen::default(),
            warned_not_loaded: Cell::new(false),
            followers: RefCell::new(Vec::new()),
            native,
            cache,
            config,
            jwks,
            discovery,
            discovered,
            keys: RefCell::new(keys),
            denylist: RefCell::new(Denylist::default()),
            metrics: Metrics::defined(),
        }
    }

    pub fn keys(&self) -> Ref<'_, Vec<ProviderKeys>> {
        self.keys.borrow()
    }

    pub fn key_sets(keys: &[ProviderKeys]) -> Vec<&KeySet> {
        keys.iter().map(ProviderKeys::keys).collect()
    }

    pub fn denylist(&self) -> Ref<'_, Denylist> {
        self.denylist.borrow()
    }

    /// Whether the revocation feed was read up to date by some thread of this Envoy (shared data
    /// is read only until this VM has seen it).
    pub fn feed_synced(&self) -> bool {
        self.feed_synced.synced(&HostShared)
    }

    /// Whether this VM may trust its denylist with a token: no initial sync is required, or the
    /// feed was read up to date. Read before [`Worker::sync_denylist`], so that a VM that sees
    /// the mark then reads every revocation stored before it.
    pub fn revocations_loaded(&self) -> bool {
        !self.sync_required || self.feed_synced()
    }

    /// Marks the feed as read up to date for every thread (after a page with `more: false` was
    /// stored), once: the first mark is counted and logged.
    pub fn mark_feed_synced(&self) {
        match feed_sync::mark(&HostShared) {
            Ok(first) => {
                self.feed_synced.remember();
                if first {
                    self.metrics.increment("revocation_feed_synced");
                    log_at!(
                        Info,
                        "oauth2-gateway: revocation feed read up to date: the denylist is loaded"
                    );
                }
            }
            Err(why) => log_at!(
                Error,
                "oauth2-gateway: could not record that the revocation feed was read up to date: {why}; tokens stay refused until a later poll records it"
            ),
        }
    }

    /// Logs, once per VM, that tokens are refused until the feed was read.
    pub fn warn_not_loaded(&self) {
        if !self.warned_not_loaded.replace(true) {
            log_at!(
                Warn,
                "oauth2-gateway: the revocation feed has not been read up to date yet: tokens are refused with 503 until it has (revocation_feed.require_initial_sync)"
            );
        }
    }

    /// Picks up changes to the shared denylist: one 8-byte read when there are none; otherwise
    /// only the shards that changed.
    pub fn sync_denylist(&self) {
        let report = self.denylist.borrow_mut().sync(&HostShared);
        if report.shards_read > 0 && report.fail_closed_shards > 0 {
            self.metrics.increment("denylist_fail_closed");
            log_at!(
                Error,
                "oauth2-gateway: {} of the denylist's shards are over capacity: tokens hashing into them are refused until the refused revocations expire",
                report.fail_closed_shards
            );
        }
    }

    /// Records revocations in the shared list, loudly when some could not be kept.
    pub fn record_revocations(&self, revocations: &[Revocation], now_ms: u64) -> bool {
        match denylist_store::record(&HostShared, revocations, now_ms / 1_000) {
            Ok(report) => {
                self.note_refused(report.refused);
                true
            }
            Err(why) => {
                log_at!(
                    Error,
                    "oauth2-gateway: could not update the shared denylist: {why}"
                );
                false
            }
        }
    }

    pub fn note_refused(&self, refused: usize) {
        if refused > 0 {
            self.metrics.add("denylist_refused", refused as u64);
            log_at!(
                Error,
                "oauth2-gateway: denylist full: {refused} revocation(s) refused; their shards now refuse every token they cover (fail closed)"
            );
        }
    }

    /// Records what a logout confirmed by the provider revokes (see
    /// [`crate::logout::local_revocations`]): in the shared list (every worker of this Envoy),
    /// and picked up here at once; on this worker only if the shared list refused it.
    pub fn revoke_locally(&self, revocations: &[Revocation], now_ms: u64) {
        if !self.record_revocations(revocations, now_ms) {
            let mut list = self.denylist.borrow_mut();
            for r in revocations {
                list.add_local_entry(r.hash, r.cutoff);
            }
            log_at!(
                Error,
                "oauth2-gateway: logout revocation recorded on this worker only"
            );
        }
        self.sync_denylist();
    }

    /// Picks up JWKS documents other threads fetched since this VM last looked. The token cache
    /// is flushed only when a provider's keys changed.
    pub fn sync_keys(&self) {
        let mut keys = self.keys.borrow_mut();
        for ((provider, share), slot) in self
            .config
            .providers
            .iter()
            .zip(&self.jwks)
            .zip(keys.iter_mut())
        {
            let Some(share) = share else { continue };
            let (version, document) = share.read(&HostShared);
            if version == 0 || slot.version() == Some(version) {
                continue;
            }
            // New keys (or a key removed): cached verifications may no longer hold.
            self.cache.borrow_mut().clear();
            if let Err(why) = slot.absorb(version, &document) {
                log_at!(
                    Warn,
                    "oauth2-gateway: provider {:?}: shared JWKS unusable, keeping previous keys: {why}",
                    provider.name
                );
            }
        }
    }

    /// Asks for an early JWKS fetch for `provider` (a token named a key we do not have: the IDP
    /// may have rotated). Throttled to one per `min_early_refresh_seconds` after a fetch, so
    /// unknown `kid`s cannot make the gateway hammer the IDP.
    pub fn request_early_refresh(&self, provider: usize, now_ms: u64) {
        let (Some(Some(share)), Some(p)) =
            (self.jwks.get(provider), self.config.providers.get(provider))
        else {
            return;
        };
        let min_gap_ms = p
            .key_source()
            .map_or(0, |s| s.min_early_refresh_seconds.saturating_mul(1_000));
        if let Err(why) = share.job.request_early(&HostShared, now_ms, min_gap_ms) {
            log_at!(
                Warn,
                "oauth2-gateway: provider {:?}: could not ask for an early JWKS fetch: {why}",
                p.name
            );
        }
    }

    /// The provider a token names in `iss`, if any; used to aim an early refresh.
    pub fn provider_of(&self, token_iss: &str) -> Option<usize> {
        self.config
            .providers
            .iter()
            .position(|p| p.issuer == token_iss)
    }
}

impl Worker {
    /// Provider `provider`'s endpoints from its discovery document, as last accepted by any
    /// thread of this Envoy (all `None` before that, or without discovery). This VM's copy is
    /// refreshed on every tick ([`Worker::sync_discovery`], re-resolved only when the shared
    /// document changed); shared data is read here only while this VM has seen no document.
    // Read by logout and introspection (being wired by their owners).
    #[allow(dead_code)]
    pub fn discovered(&self, provider: usize) -> DiscoveredEndpoints {
        let seen = self
            .discovered
            .borrow()
            .get(provider)
            .is_some_and(|(version, _)| *version > 0);
        if !seen {
            self.sync_discovery_of(provider);
        }
        self.discovered
            .borrow()
            .get(provider)
            .map(|(_, e)| e.clone())
            .unwrap_or_default()
    }

    /// Picks up discovery documents other threads accepted since this VM last looked.
    pub fn sync_discovery(&self) {
        for provider in 0..self.discovery.len() {
            self.sync_discovery_of(provider);
        }
    }

    fn sync_discovery_of(&self, index: usize) {
        let (Some(Some(share)), Some(provider)) =
            (self.discovery.get(index), self.config.providers.get(index))
        else {
            return;
        };
        let (version, document) = share.read(&HostShared);
        let mut discovered = self.discovered.borrow_mut();
        let Some(slot) = discovered.get_mut(index) else {
            return;
        };
        if version == 0 || slot.0 == version {
            return;
        }
        slot.0 = version;
        // Stored only once accepted by the same configuration: resolving again cannot fail
        // unless the entry was tampered with, and then the previous endpoints stay.
        match crate::shared_state::discovery::resolve(provider, &document) {
            Ok(resolved) => slot.1 = resolved.endpoints,
            Err(why) => log_at!(
                Error,
                "oauth2-gateway: provider {:?}: shared discovery document unusable: {why}",
                provider.name
            ),
        }
    }
}
