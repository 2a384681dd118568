//! An opaque token (or any token of a provider that introspects every token) in the Wasm host:
//! the request is paused while the provider is asked (RFC 7662), the answer goes into the shared
//! cache through the core ([`crate::validation::introspection::complete`]), and the HTTP context
//! then decides the request again — now from the cache.
//!
//! One call in flight per token for the whole Envoy
//! ([`crate::validation::introspection_flight`]): a request for a token already being asked
//! about is paused without a call of its own (a [`Follower`]). The asking request wakes the
//! followers of its own VM when its answer is in; other VMs' followers are woken by their root
//! context, which ticks every [`FOLLOWER_TICK`] while it has any.

use super::host::{self, log_at};
use super::shared_data::HostShared;
use super::worker::{Follower, Worker};
use crate::callout::CalloutRequest;
use crate::http::denial::Denial;
use crate::jose::jwk::KeySet;
use crate::jose::signature::NativeVerifier;
use crate::validation::introspection::{AnswerContext, complete, request};
use crate::validation::introspection_cache::{self, token_hash};
use crate::validation::introspection_flight::{self as flight, Flight};
use std::time::Duration;

/// How often a root context with followers looks whether their calls ended.
pub const FOLLOWER_TICK: Duration = Duration::from_millis(5);

/// The introspection a paused request waits for.
pub struct Pending {
    pub call: u32,
    provider: usize,
    token: String,
}

impl Pending {
    pub fn hash(&self) -> u64 {
        token_hash(&self.token)
    }
}

/// Why a request is paused for an introspection.
pub enum Held {
    Asking(Pending),
    /// Another request asks about the same token (see [`wake_followers`]).
    Following,
}

/// Asks provider `provider` about `token` for HTTP context `context_id`, or follows the call in
/// flight for it; `Err` with the refusal when no call could be made.
pub fn start(
    worker: &Worker,
    context_id: u32,
    provider: usize,
    token: String,
) -> Result<Held, Denial> {
    let Some(call) = request(
        &worker.config,
        provider,
        &token,
        &worker.discovered(provider),
    ) else {
        return Err(Denial::IntrospectionUnavailable);
    };
    let hash = token_hash(&token);
    let now_ms = host::now_ms();
    if let Flight::Follow { .. } = flight::claim(&HostShared, hash, now_ms, call.timeout_ms) {
        worker
            .followers
            .borrow_mut()
            .push(Follower { context_id, hash });
        // Sets this VM's root tick (Envoy keeps one per root context).
        host::set_tick_period(FOLLOWER_TICK);
        worker.metrics.increment("introspection_followed");
        return Ok(Held::Following);
    }
    dispatch(worker, call, provider, token).map(Held::Asking)
}

/// Asks provider `provider` about `token` for this request alone (a logout: it follows no one,
/// though it ends a flight it finds, as any answer does).
pub fn ask(worker: &Worker, provider: usize, token: String) -> Result<Pending, Denial> {
    let Some(call) = request(
        &worker.config,
        provider,
        &token,
        &worker.discovered(provider),
    ) else {
        return Err(Denial::IntrospectionUnavailable);
    };
    dispatch(worker, call, provider, token)
}

fn dispatch(
    worker: &Worker,
    call: CalloutRequest,
    provider: usize,
    token: String,
) -> Result<Pending, Denial> {
    let headers = call.header_pairs();
    let timeout = Duration::from_millis(call.timeout_ms);
    match host::dispatch(&call.cluster, &headers, Some(&call.body), timeout) {
        Some(id) => Ok(Pending {
            call: id,
            provider,
            token,
        }),
        None => {
            flight::release(&HostShared, token_hash(&token));
            worker.metrics.increment("introspection_call_failed");
            Err(Denial::IntrospectionUnavailable)
        }
    }
}

/// The call of `pending` ended (answered, or its stream is gone): the flight is released and
/// this VM's followers of it are woken, each decided from the cache in its own context, then
/// `back_to` is the effective context again.
pub fn end_flight(worker: &Worker, hash: u64, back_to: u32) {
    flight::release(&HostShared, hash);
    wake_followers(worker, |f| f.hash == hash, back_to);
}

/// Wakes the followers whose call ended (any VM's): the root context's tick. Returns whether
/// some still wait.
pub fn wake_ended(worker: &Worker, back_to: u32) -> bool {
    let now_ms = host::now_ms();
    let ended = |f: &Follower| {
        flight::in_flight(&HostShared, f.hash, now_ms).is_none()
            || introspection_cache::get(&HostShared, f.hash, now_ms / 1_000).is_some()
    };
    wake_followers(worker, ended, back_to);
    !worker.followers.borrow().is_empty()
}

fn wake_followers(worker: &Worker, ended: impl Fn(&Follower) -> bool, back_to: u32) {
    let woken: Vec<Follower> = {
        let mut followers = worker.followers.borrow_mut();
        let (woken, waiting) = followers.drain(..).partition(|f| ended(f));
        *followers = waiting;
        woken
    };
    if woken.is_empty() {
        return;
    }
    for follower in woken {
        if host::set_effective_context(follower.context_id) {
            super::admission::decide_woken(worker);
        }
    }
    host::set_effective_context(back_to);
}

/// A follower's stream ended while it waited.
pub fn forget_follower(worker: &Worker, context_id: u32) {
    worker
        .followers
        .borrow_mut()
        .retain(|f| f.context_id != context_id);
}

/// The provider answered: keeps the answer; `Err` with the refusal when the token is refused
/// (inactive, unusable answer, claims the gateway refuses).
pub fn on_answer(
    worker: &Worker,
    pending: &Pending,
    headers: usize,
    body_size: usize,
) -> Result<(), Denial> {
    let keys = worker.keys();
    let sets = Worker::key_sets(&keys);
    let empty = KeySet::default();
    let cx = AnswerContext {
        keys: sets.get(pending.provider).copied().unwrap_or(&empty),
        now: host::now_ms() / 1_000,
        native: worker.native.as_ref().map(|n| n as &dyn NativeVerifier),
        shared: &HostShared,
    };
    let status = host::http_call_status(headers);
    let body = host::http_call_body(body_size);
    let outcome = complete(
        &worker.config,
        cx,
        pending.provider,
        &pending.token,
        status,
        &body,
    );
    if outcome == Err(Denial::UnknownKey) {
        worker.request_early_refresh(pending.provider, host::now_ms());
        worker.metrics.increment("introspection_call_failed");
        return Err(Denial::IntrospectionUnavailable);
    }
    if outcome == Err(Denial::IntrospectionUnavailable) {
        worker.metrics.increment("introspection_call_failed");
        log_at!(
            Warn,
            "oauth2-gateway: introspection answered {status:?}: the token is refused with 503"
        );
    } else {
        worker.metrics.increment("introspection_call_ok");
    }
    outcome
}
