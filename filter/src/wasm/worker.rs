//! What one VM (Envoy's main thread or a worker) knows: the validated configuration, its copy of
//! every provider's keys, and its metrics. Shared by the root context and its HTTP contexts.

use super::host::{self, log_at};
use super::jwks_refresh::entry_key;
use super::metrics::Metrics;
use super::native_verifier::EnvoyVerifier;
use super::revocation_feed;
use crate::config::FilterConfig;
use crate::denylist::Denylist;
use crate::jwk::KeySet;
use crate::key_store::ProviderKeys;
use crate::refresh::Schedule;
use crate::token_cache::TokenCache;
use std::cell::{Ref, RefCell};

pub struct Worker {
    pub config: FilterConfig,
    keys: RefCell<Vec<ProviderKeys>>,
    denylist: RefCell<Denylist>,
    pub cache: RefCell<TokenCache>,
    /// The shared denylist version stamp this VM's copy corresponds to.
    denylist_version: RefCell<Option<Vec<u8>>>,
    pub metrics: Metrics,
    /// Envoy's native signature verification, when present.
    pub native: Option<EnvoyVerifier>,
}

impl Worker {
    pub fn new(config: FilterConfig) -> Self {
        let keys = config
            .providers
            .iter()
            .map(|p| ProviderKeys::new(p.inline_keys.clone()))
            .collect();
        let cache = RefCell::new(TokenCache::new(config.cache_max_entries));
        let native = EnvoyVerifier::probe();
        Worker {
            native,
            cache,
            config,
            keys: RefCell::new(keys),
            denylist: RefCell::new(Denylist::default()),
            denylist_version: RefCell::new(None),
            metrics: Metrics::default(),
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

    /// Picks up the shared denylist when its version stamp moved.
    pub fn sync_denylist(&self) {
        let stamp = host::shared_get(revocation_feed::VERSION_KEY).map(|(v, _)| v);
        if stamp.is_none() || *self.denylist_version.borrow() == stamp {
            return;
        }
        let (_, list, _) = revocation_feed::read_shared();
        *self.denylist.borrow_mut() = list;
        *self.denylist_version.borrow_mut() = stamp;
    }

    /// Records a revocation confirmed by the IDP during a logout through this gateway: in the
    /// shared list (every worker of this Envoy) and in this VM's copy at once.
    pub fn revoke_locally(&self, jti: Option<&str>, sid: Option<&str>, exp: u64, now_ms: u64) {
        let apply = |list: &mut Denylist| {
            if let Some(jti) = jti {
                list.revoke_jti(jti, exp);
            }
            if let Some(sid) = sid {
                list.revoke_sid(sid, exp);
            }
        };
        apply(&mut self.denylist.borrow_mut());
        if revocation_feed::update_shared(now_ms, |_, list| apply(list)).is_none() {
            log_at!(
                Error,
                "oauth2-gateway: logout revocation recorded on this worker only"
            );
        }
    }

    /// Picks up JWKS documents other threads fetched since this VM last looked.
    pub fn sync_keys(&self) {
        let mut keys = self.keys.borrow_mut();
        for (provider, slot) in self.config.providers.iter().zip(keys.iter_mut()) {
            let Some(source) = &provider.jwks else {
                continue;
            };
            let Some((entry, version)) = host::shared_get(&entry_key(source)) else {
                continue;
            };
            if slot.version() == Some(version) {
                continue;
            }
            let (_, payload) = Schedule::decode(&entry);
            // New keys (or a key removed): cached verifications may no longer hold.
            self.cache.borrow_mut().clear();
            if let Err(why) = slot.absorb(version, payload) {
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
        let Some(source) = self
            .config
            .providers
            .get(provider)
            .and_then(|p| p.jwks.as_ref())
        else {
            return;
        };
        let key = entry_key(source);
        let Some((entry, cas)) = host::shared_get(&key) else {
            return;
        };
        let (schedule, payload) = Schedule::decode(&entry);
        let min_gap_ms = source.min_early_refresh_seconds.saturating_mul(1_000);
        if let Some(early) = schedule.request_early(now_ms, min_gap_ms) {
            host::shared_set(&key, &early.encode(payload), Some(cas));
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
