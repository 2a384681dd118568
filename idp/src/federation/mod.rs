//! The federation (revocation hub) role: upstream issuers whose logouts the IDP publishes on its
//! revocation feed as cut-offs — from their back-channel logout tokens ([`logout`]), validated
//! with the gateway's own code (`filter::logout::backchannel`), or reported by gateways after their own
//! logouts. [`Hub`] keeps each upstream's last good keys, refreshed in the background and once
//! (rate-limited) when a token names a key it does not know. [`ssf`] receives Shared Signals
//! (CAEP/RISC) events from transmitters and stores them as the same cut-offs.

pub mod fetch;
pub mod logout;
pub mod ssf;

use crate::settings::{FederatedIssuer, Federation};
use fetch::Fetcher;
use filter::jose::jwk::KeySet;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// The least time between two fetches of one issuer's keys asked by tokens (unknown `kid`): a
/// flood of tokens naming made-up keys costs the upstream one request per this period.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

struct Upstream {
    config: FederatedIssuer,
    /// The last good key set (empty until the first fetch succeeded).
    keys: RwLock<Arc<KeySet>>,
    /// When a fetch last started; serialises fetches of this issuer.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

pub struct Hub {
    upstreams: Vec<Upstream>,
    fetcher: Fetcher,
    /// The Shared Signals streams (`[[federation.ssf_streams]]`).
    pub ssf: ssf::Receiver,
}

impl Hub {
    pub fn new(federation: &Federation) -> Self {
        Hub {
            upstreams: federation
                .issuers
                .iter()
                .map(|config| Upstream {
                    config: config.clone(),
                    keys: RwLock::new(Arc::new(KeySet::default())),
                    last_fetch: tokio::sync::Mutex::new(None),
                })
                .collect(),
            fetcher: Fetcher::default(),
            ssf: ssf::Receiver::new(federation),
        }
    }

    fn upstream(&self, issuer: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.config.issuer == issuer)
    }

    /// The configuration of a federated issuer.
    pub fn issuer(&self, issuer: &str) -> Option<&FederatedIssuer> {
        self.upstream(issuer).map(|u| &u.config)
    }

    /// The issuer's last good keys (empty when none were fetched yet).
    pub fn keys(&self, issuer: &str) -> Arc<KeySet> {
        self.upstream(issuer)
            .map(|u| match u.keys.read() {
                Ok(k) => Arc::clone(&k),
                Err(poisoned) => Arc::clone(&poisoned.into_inner()),
            })
            .unwrap_or_default()
    }

    /// Fetches the issuer's keys unless a fetch started less than `min_interval` ago; `true`
    /// if new keys were installed. A failed fetch keeps the last good set.
    pub async fn refresh(&self, issuer: &str, min_interval: Duration) -> bool {
        let Some(up) = self.upstream(issuer) else {
            return false;
        };
        let mut last = up.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < min_interval) {
            return false;
        }
        *last = Some(Instant::now());
        match self.fetcher.keys(&up.config).await {
            Ok(parsed) => {
                for why in &parsed.skipped {
                    tracing::info!(issuer, %why, "upstream key skipped");
                }
                let set = Arc::new(parsed.set);
                match up.keys.write() {
                    Ok(mut k) => *k = set,
                    Err(poisoned) => *poisoned.into_inner() = set,
                }
                true
            }
            Err(e) => {
                tracing::warn!(issuer, error = %e, "fetching upstream keys failed; keeping the last good ones");
                false
            }
        }
    }

    /// Refreshes every issuer's keys now and then every `period`, until the process ends.
    pub fn spawn_refresh(self: &Arc<Self>, period: Duration) {
        if self.upstreams.is_empty() {
            return;
        }
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                for up in &hub.upstreams {
                    hub.refresh(&up.config.issuer, Duration::ZERO).await;
                }
            }
        });
    }
}
