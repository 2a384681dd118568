//! A discovery provider's job on the main thread: the document (fetched by
//! [`Background::tick`] on the provider's key schedule), checked by the core
//! ([`filter::shared_state::discovery::resolve`]: exact issuer, URLs only through configured clusters), its
//! endpoints published to the workers ([`Gateway::discovered`]), then the keys from the resolved
//! `jwks_uri` (ended by `jwks_answer`, like a configured `jwks` source). A refused or failed
//! document keeps the last good one, whose `jwks_uri` is still used for the keys.

use super::{Background, Job};
use crate::host::MainThread;
use crate::log::{Level, log};
use crate::shared::Gateway;
use filter::shared_state::discovery::{self, DiscoveryError};

impl Background {
    pub(super) fn discovery_answer(
        &mut self,
        gw: &Gateway,
        host: &mut impl MainThread,
        index: usize,
        status: Option<u32>,
        body: &[u8],
        now_ms: u64,
    ) {
        let (Some(provider), Some(fetch)) =
            (gw.config.providers.get(index), self.jwks.get_mut(index))
        else {
            return;
        };
        fetch.in_flight = false;
        let (Some(d), Some(last)) = (&provider.discovery, self.discovered.get_mut(index)) else {
            return;
        };
        let interval = d.source.refresh_seconds.saturating_mul(1_000);
        let fetched = match status {
            Some(200) => discovery::resolve(provider, body)
                .map_err(|e: DiscoveryError| (true, e.to_string())),
            Some(other) => Err((false, format!("HTTP status {other}"))),
            None => Err((
                false,
                "no response (timeout or connection failure)".to_owned(),
            )),
        };
        match fetched {
            Ok(resolved) => {
                host.count("discovery_ok", 1);
                if last.as_ref() != Some(&resolved) {
                    gw.publish_discovered(index, resolved.endpoints.clone());
                }
                *last = Some(resolved);
            }
            Err((refused, why)) => {
                host.count("discovery_failed", 1);
                let keeping = if last.is_some() {
                    "keeping the last good document"
                } else {
                    "the provider has no keys: its tokens are refused"
                };
                // Content the gateway refuses, or no document at all: the operator must act.
                let level = if refused || last.is_none() {
                    Level::Error
                } else {
                    Level::Warn
                };
                log(
                    level,
                    &format!(
                        "oauth2-gateway: provider {:?}: discovery document from cluster {:?} {}: {why}; {keeping}",
                        provider.name, d.source.cluster, d.source.path
                    ),
                );
            }
        }
        let Some(jwks) = last.as_ref().map(|r| r.jwks.clone()) else {
            fetch.schedule = fetch.schedule.after_failure(now_ms, interval);
            return;
        };
        let headers = [
            (":method", "GET"),
            (":path", jwks.path.as_str()),
            (":authority", jwks.authority.as_str()),
            ("accept", "application/json"),
        ];
        match host.callout(&jwks.cluster, &headers, b"", jwks.timeout_ms) {
            Some(id) => {
                fetch.in_flight = true;
                self.calls.insert(id, Job::Jwks(index));
            }
            None => {
                host.count("jwks_fetch_failed", 1);
                fetch.schedule = fetch.schedule.after_failure(now_ms, interval);
                log(
                    Level::Error,
                    &format!(
                        "oauth2-gateway: cannot call cluster {:?} for the discovered jwks_uri {} (is the cluster defined?)",
                        jwks.cluster, jwks.path
                    ),
                );
            }
        }
    }
}
