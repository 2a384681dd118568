//! The root context: validates the plugin configuration once (failing closed with the reason in
//! Envoy's log), drives background refreshes on ticks, and creates HTTP contexts.

use super::discovery;
use super::host::{self, log_at};
use super::http::Http;
use super::introspection;
use super::jwks_refresh;
use super::revocation_feed;
use super::worker::Worker;
use crate::config::FilterConfig;
use crate::shared_state::feed_poll;
use crate::shared_state::lease::HeldLease;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// Every thread ticks; a tick only reads small shared entries unless something is due.
const TICK: Duration = Duration::from_millis(100);

/// A background call in flight from this thread, with the lease it holds for it.
#[derive(Debug)]
enum Job {
    Jwks(usize, HeldLease),
    /// A discovery document; the keys' fetch follows under the same lease.
    Discovery(usize, HeldLease),
    /// A feed poll, when it started, and whether it asked to be held.
    RevocationFeed(HeldLease, u64, bool),
}

enum Phase {
    AwaitingConfig,
    Ready(Rc<Worker>),
    Failed,
}

pub struct Root {
    context_id: u32,
    phase: Phase,
    /// Background calls in flight from this thread, by callout token.
    jobs: HashMap<u32, Job>,
    /// Feed polls started from an answer (not a tick) since the last tick (at most
    /// [`feed_poll::AT_ONCE_PER_TICK`]).
    polls_from_answers: u32,
    /// When the last tick did the background work (ticks come faster while requests follow an
    /// introspection in flight: see [`introspection::FOLLOWER_TICK`]).
    last_work_ms: u64,
}

impl Root {
    pub fn new(context_id: u32) -> Self {
        Root {
            context_id,
            phase: Phase::AwaitingConfig,
            jobs: HashMap::new(),
            polls_from_answers: 0,
            last_work_ms: 0,
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Phase::Ready(worker) = &self.phase else {
            return;
        };
        let Some(job) = self.jobs.remove(&token) else {
            log_at!(
                Warn,
                "oauth2-gateway: answer to an unknown call {token} ignored"
            );
            return;
        };
        let status = host::http_call_status(headers);
        let body = host::http_call_body(body_size);
        let now_ms = host::now_ms();
        match job {
            Job::Jwks(provider, lease) => {
                jwks_refresh::finish_fetch(worker, provider, lease, status, &body, now_ms)
            }
            Job::Discovery(provider, lease) => {
                if let Some((token, lease)) =
                    discovery::finish_document(worker, provider, lease, status, &body, now_ms)
                {
                    self.jobs.insert(token, Job::Jwks(provider, lease));
                }
            }
            Job::RevocationFeed(lease, started_ms, long) => {
                let at_once = revocation_feed::finish_poll(
                    worker,
                    (lease, long),
                    started_ms,
                    status,
                    &body,
                    now_ms,
                );
                // The next poll, when due at once after news (see `feed_poll::at_once`), starts
                // now rather than at the next tick: a revocation made in between would otherwise
                // wait up to a tick (100 ms) at the IDP.
                if at_once
                    && self.polls_from_answers < feed_poll::AT_ONCE_PER_TICK
                    && let Some(poll) = revocation_feed::start_due_poll(worker, now_ms)
                {
                    self.polls_from_answers += 1;
                    self.jobs.insert(
                        poll.token,
                        Job::RevocationFeed(poll.lease, now_ms, poll.long),
                    );
                }
            }
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = host::plugin_configuration().unwrap_or_default();
        let config = FilterConfig::from_json(&bytes);
        match config {
            Ok(config) => {
                log_at!(
                    Info,
                    "oauth2-gateway: configured (context {}): {} provider(s), {} rule(s)",
                    self.context_id,
                    config.providers.len(),
                    config.rules.len()
                );
                let worker = Rc::new(Worker::new(config));
                log_at!(
                    Info,
                    "oauth2-gateway: signature verification: {}",
                    if worker.native.is_some() {
                        "Envoy's native verify_signature (ES256, RS256), RustCrypto for the rest"
                    } else {
                        "RustCrypto inside Wasm (verify_signature not available)"
                    }
                );
                worker.sync_keys();
                worker.sync_discovery();
                worker.sync_denylist();
                self.phase = Phase::Ready(worker);
                host::set_tick_period(TICK);
                true
            }
            Err(e) => {
                log_at!(
                    Critical,
                    "oauth2-gateway: invalid plugin configuration, refusing to start: {}: {}",
                    e.field,
                    e.message
                );
                self.phase = Phase::Failed;
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Phase::Ready(worker) = &self.phase else {
            return;
        };
        let now_ms = host::now_ms();
        if introspection::wake_ended(worker, self.context_id) {
            host::set_tick_period(introspection::FOLLOWER_TICK);
        } else {
            host::set_tick_period(TICK);
        }
        // The background work once per TICK (give or take a follower tick of timer jitter).
        let work_ms = u64::try_from((TICK - introspection::FOLLOWER_TICK).as_millis()).unwrap_or(0);
        if now_ms < self.last_work_ms.saturating_add(work_ms) {
            return;
        }
        self.last_work_ms = now_ms;
        self.polls_from_answers = 0;
        worker.sync_keys();
        worker.sync_discovery();
        worker.sync_denylist();
        // A thread with a call of a kind in flight does not start another (its lease covers it).
        if !self
            .jobs
            .values()
            .any(|j| matches!(j, Job::Jwks(..) | Job::Discovery(..)))
        {
            let started = jwks_refresh::start_due_fetches(worker, now_ms);
            self.jobs.extend(
                started
                    .into_iter()
                    .map(|(t, p, lease)| (t, Job::Jwks(p, lease))),
            );
            let started = discovery::start_due_fetches(worker, now_ms);
            self.jobs.extend(
                started
                    .into_iter()
                    .map(|(t, p, lease)| (t, Job::Discovery(p, lease))),
            );
        }
        if !self
            .jobs
            .values()
            .any(|j| matches!(j, Job::RevocationFeed(..)))
            && let Some(poll) = revocation_feed::start_due_poll(worker, now_ms)
        {
            self.jobs.insert(
                poll.token,
                Job::RevocationFeed(poll.lease, now_ms, poll.long),
            );
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let worker = match &self.phase {
            Phase::Ready(worker) => Some(Rc::clone(worker)),
            Phase::AwaitingConfig | Phase::Failed => None,
        };
        Some(Box::new(Http::new(worker, context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
