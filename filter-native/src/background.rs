//! Background work of one configuration, on Envoy's main thread only: each provider's JWKS and the
//! revocation feed, fetched through Envoy's own HTTP callouts from the filter configuration (the
//! 1.40 ABI's `http_filter_config_http_callout`) to the configured clusters. There is one main
//! thread, so one fetch per Envoy needs no lease: the schedule, backoff and throttling are the
//! core's [`Schedule`]; results are published to every worker through [`Gateway`].

use crate::host::MainThread;
use crate::log::{Level, log};
use crate::shared::{Gateway, KeySnapshot};
use filter::jose::jwk::KeySet;
use filter::jose::key_store::ProviderKeys;
use filter::shared_state::feed_page::FeedPage;
use filter::shared_state::feed_poll;
use filter::shared_state::refresh::Schedule;
use std::collections::HashMap;

mod discovery;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Jwks(usize),
    /// A provider's discovery document; its keys' fetch follows (see [`discovery`]).
    Discovery(usize),
    RevocationFeed,
}

#[derive(Debug, Default)]
struct Fetch {
    schedule: Schedule,
    in_flight: bool,
    /// When the call in flight started (ms).
    started_ms: u64,
    /// Whether the feed poll in flight asked to be held (long poll).
    long: bool,
}

/// Main-thread state of the background fetches.
pub struct Background {
    jwks: Vec<Fetch>,
    keys: Vec<ProviderKeys>,
    feed: Fetch,
    calls: HashMap<u64, Job>,
    /// Each discovery provider's last good document, resolved.
    discovered: Vec<Option<filter::shared_state::discovery::Resolved>>,
    /// The feed position the denylist is up to date with (opaque, from the IDP).
    feed_cursor: Option<String>,
    /// Feed polls started from an answer (not a tick) since the last tick (at most
    /// [`feed_poll::AT_ONCE_PER_TICK`]).
    polls_from_answers: u32,
    generation: u64,
}

impl Background {
    pub fn new(gateway: &Gateway) -> Background {
        let providers = &gateway.config.providers;
        Background {
            jwks: providers.iter().map(|_| Fetch::default()).collect(),
            keys: providers
                .iter()
                .map(|p| ProviderKeys::new(p.inline_keys.clone()))
                .collect(),
            feed: Fetch::default(),
            calls: HashMap::new(),
            discovered: providers.iter().map(|_| None).collect(),
            feed_cursor: None,
            polls_from_answers: 0,
            generation: 0,
        }
    }

    /// Starts whatever is due (or asked for early).
    pub fn tick(&mut self, gw: &Gateway, host: &mut impl MainThread, now_ms: u64) {
        self.polls_from_answers = 0;
        for (index, provider) in gw.config.providers.iter().enumerate() {
            let (Some(source), Some(fetch)) = (provider.key_source(), self.jwks.get_mut(index))
            else {
                continue;
            };
            if gw.take_early_refresh(index)
                && let Some(early) = fetch.schedule.request_early(
                    now_ms,
                    source.min_early_refresh_seconds.saturating_mul(1_000),
                )
            {
                fetch.schedule = early;
            }
            if fetch.in_flight || !fetch.schedule.is_due(now_ms) {
                continue;
            }
            let headers = [
                (":method", "GET"),
                (":path", source.path.as_str()),
                (":authority", source.authority.as_str()),
                ("accept", "application/json"),
            ];
            // A discovery provider's job starts with its document (`source` is the document's).
            let job = match provider.discovery {
                Some(_) => Job::Discovery(index),
                None => Job::Jwks(index),
            };
            match host.callout(&source.cluster, &headers, b"", source.timeout_ms) {
                Some(id) => {
                    fetch.in_flight = true;
                    self.calls.insert(id, job);
                }
                None => {
                    host.count("jwks_fetch_failed", 1);
                    let interval = source.refresh_seconds.saturating_mul(1_000);
                    fetch.schedule = fetch.schedule.after_failure(now_ms, interval);
                    log(
                        Level::Error,
                        &format!(
                            "oauth2-gateway: cannot call cluster {:?} for {} (is the cluster defined?)",
                            source.cluster, source.path
                        ),
                    );
                }
            }
        }
        self.poll_feed(gw, host, now_ms);
    }

    /// Starts the feed's poll when it is due; whether one was started.
    fn poll_feed(&mut self, gw: &Gateway, host: &mut impl MainThread, now_ms: u64) -> bool {
        let (Some(feed), Some(client)) = (&gw.config.revocation_feed, &gw.config.idp_client) else {
            return false;
        };
        if self.feed.in_flight || !self.feed.schedule.is_due(now_ms) {
            return false;
        }
        let e = &feed.endpoint;
        // Not long-polled until the list is up to date (see `feed_poll`).
        let long = feed_poll::is_long(feed, gw.feed_synced());
        let path = feed_poll::request_path(feed, self.feed_cursor.as_deref(), long);
        let auth = client.basic_authorization();
        let headers = [
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", e.authority.as_str()),
            ("accept", "application/json"),
            ("authorization", auth.as_str()),
        ];
        match host.callout(&e.cluster, &headers, b"", feed_poll::timeout_ms(feed, long)) {
            Some(id) => {
                self.feed.in_flight = true;
                self.feed.started_ms = now_ms;
                self.feed.long = long;
                self.calls.insert(id, Job::RevocationFeed);
                true
            }
            None => {
                host.count("revocation_poll_failed", 1);
                self.feed.schedule = self
                    .feed
                    .schedule
                    .after_failure(now_ms, feed.poll_ms.max(1_000));
                false
            }
        }
    }

    /// The answer to one of our calls: `status` is `None` when there was no response (reset,
    /// connection failure).
    pub fn answer(
        &mut self,
        gw: &Gateway,
        host: &mut impl MainThread,
        call: u64,
        status: Option<u32>,
        body: &[u8],
        now_ms: u64,
    ) {
        match self.calls.remove(&call) {
            Some(Job::Jwks(index)) => self.jwks_answer(gw, host, index, status, body, now_ms),
            Some(Job::Discovery(index)) => {
                self.discovery_answer(gw, host, index, status, body, now_ms)
            }
            Some(Job::RevocationFeed) => {
                let at_once = self.feed_answer(gw, host, status, body, now_ms);
                // The next poll, when due at once after news (see `feed_poll::at_once`), starts
                // now rather than at the next tick: a revocation made in between would otherwise
                // wait up to a tick at the IDP.
                if at_once
                    && self.polls_from_answers < feed_poll::AT_ONCE_PER_TICK
                    && self.poll_feed(gw, host, now_ms)
                {
                    self.polls_from_answers += 1;
                }
            }
            None => log(
                Level::Warn,
                &format!("oauth2-gateway: answer to an unknown call {call} ignored"),
            ),
        }
    }

    fn jwks_answer(
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
        let Some(source) = provider.key_source() else {
            return;
        };
        let from = match &provider.discovery {
            Some(_) => "the discovered jwks_uri".to_owned(),
            None => format!("cluster {:?} {}", source.cluster, source.path),
        };
        let interval = source.refresh_seconds.saturating_mul(1_000);
        let outcome = match status {
            Some(200) => KeySet::parse(body).map(|_| ()).map_err(|e| e.to_string()),
            Some(other) => Err(format!("HTTP status {other}")),
            None => Err("no response (timeout or connection failure)".to_owned()),
        };
        // The keys' content version: a fetch that returns the same document changes nothing, so
        // the workers' verified-token caches are flushed only when the keys really change.
        let absorbed = outcome.and_then(|()| {
            let version = content_version(body);
            let slot = self
                .keys
                .get_mut(index)
                .ok_or_else(|| "no such provider".to_owned())?;
            let changed = slot.version() != Some(version);
            slot.absorb(version, body).map(|()| changed)
        });
        match absorbed {
            Ok(changed) => {
                fetch.schedule = Schedule::after_success(now_ms, interval);
                host.count("jwks_fetch_ok", 1);
                if changed {
                    self.generation += 1;
                    let sets = self.keys.iter().map(|k| k.keys().clone()).collect();
                    gw.publish_keys(KeySnapshot::new(sets, self.generation));
                }
                log(
                    Level::Debug,
                    &format!(
                        "oauth2-gateway: provider {:?}: JWKS refreshed",
                        provider.name
                    ),
                );
            }
            Err(why) => {
                fetch.schedule = fetch.schedule.after_failure(now_ms, interval);
                host.count("jwks_fetch_failed", 1);
                log(
                    Level::Warn,
                    &format!(
                        "oauth2-gateway: provider {:?}: JWKS fetch from {from} failed: {why}; keeping previous keys",
                        provider.name
                    ),
                );
            }
        }
    }

    fn feed_answer(
        &mut self,
        gw: &Gateway,
        host: &mut impl MainThread,
        status: Option<u32>,
        body: &[u8],
        now_ms: u64,
    ) -> bool {
        self.feed.in_flight = false;
        let Some(feed) = &gw.config.revocation_feed else {
            return false;
        };
        let mut at_once = false;
        let outcome = match status {
            // The cursor moves only once the page's revocations are stored.
            Some(200) => FeedPage::parse(body)
                .map_err(|e| e.to_string())
                .and_then(|page| {
                    let added = gw.record_revocations(&page.revocations, now_ms)?;
                    let answered = feed_poll::Answered {
                        entries: page.revocations.len(),
                        more: page.more,
                    };
                    let synced = filter::shared_state::feed_sync::completes_sync(&page);
                    let moved = self.feed_cursor.as_deref() != Some(page.cursor.as_str());
                    self.feed_cursor = Some(page.cursor);
                    gw.prune_denylist(now_ms);
                    Ok((added, answered, synced, moved))
                }),
            Some(other) => Err(format!("HTTP status {other}")),
            None => Err("no response (timeout or connection failure)".to_owned()),
        };
        match outcome {
            Ok((added, answered, synced, moved)) => {
                let elapsed_ms = now_ms.saturating_sub(self.feed.started_ms);
                let next_ms =
                    feed_poll::next_interval_ms(feed, self.feed.long, answered, elapsed_ms);
                self.feed.schedule = Schedule::after_success(now_ms, next_ms);
                at_once = feed_poll::at_once(next_ms, answered.entries, moved);
                host.count("revocation_poll_ok", 1);
                // The page's revocations are published: now (not before) the list is up to date.
                if synced && gw.mark_feed_synced() {
                    host.count("revocation_feed_synced", 1);
                    log(
                        Level::Info,
                        "oauth2-gateway: revocation feed read up to date: the denylist is loaded",
                    );
                }
                if added > 0 {
                    log(
                        Level::Debug,
                        &format!("oauth2-gateway: revocation feed: {added} new entries"),
                    );
                }
            }
            Err(why) => {
                self.feed.schedule = self
                    .feed
                    .schedule
                    .after_failure(now_ms, feed.poll_ms.max(1_000));
                host.count("revocation_poll_failed", 1);
                log(
                    Level::Warn,
                    &format!(
                        "oauth2-gateway: revocation feed poll ({:?} {}) failed: {why}; enforcing the known list and retrying",
                        feed.endpoint.cluster, feed.endpoint.path
                    ),
                );
            }
        }
        at_once
    }
}

/// A JWKS document's content version (SipHash of its bytes, fixed keys): equal documents, equal
/// versions.
fn content_version(body: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    #[allow(deprecated)] // SipHasher's fixed keys are what a content version needs.
    let mut hasher = std::hash::SipHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
}
