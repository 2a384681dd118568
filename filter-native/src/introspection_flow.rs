//! An opaque token (or any token of a provider that introspects every token) on one stream: the
//! request is held while the provider is asked (RFC 7662), the answer goes into the shared cache
//! through the core ([`filter::validation::introspection::complete`]), then the request is decided
//! again — now from the cache — and let through or refused.
//!
//! One call in flight per token for the whole Envoy
//! ([`filter::validation::introspection_flight`]): a request for a token already being asked
//! about, on any worker, is held without a call of its own and woken (through Envoy's stream
//! scheduler) when that answer is in.

use crate::host::Stream;
use crate::log::{Level, log};
use crate::logout_flow::LogoutFlow;
use crate::request::{self, Next};
use crate::shared::Gateway;
use filter::http::denial::Denial;
use filter::validation::introspection::{
    AnswerContext, complete, request as introspection_request,
};
use filter::validation::introspection_cache;
use filter::validation::introspection_flight::{self as flight, Flight};

/// The introspection call a held request waits for.
pub struct IntrospectionCall {
    pub call: u64,
    provider: usize,
    token: String,
}

impl IntrospectionCall {
    fn hash(&self) -> u64 {
        introspection_cache::token_hash(&self.token)
    }
}

/// Why a request is held for an introspection.
pub enum Held {
    /// This request asks the provider.
    Asking(IntrospectionCall),
    /// Another request (any worker) is asking about the same token: this one is woken when that
    /// answer is in the shared cache, then decided from it.
    Following,
}

/// Asks provider `provider` about `token`, or follows the call already in flight for it; `None`
/// (the request already answered with 503) when no call could be made.
pub fn start(
    gw: &Gateway,
    stream: &mut impl Stream,
    headers: &[(&str, &str)],
    provider: usize,
    token: String,
    now_ms: u64,
) -> Option<Held> {
    let discovered = gw.discovered(provider);
    let Some(request) = introspection_request(&gw.config, provider, &token, &discovered) else {
        return refuse_unreachable(gw, stream, headers, now_ms);
    };
    let hash = introspection_cache::token_hash(&token);
    if let Some(waker) = stream.waker()
        && let Flight::Follow { .. } = flight::claim(&gw.replay, hash, now_ms, request.timeout_ms)
    {
        gw.wait_for_introspection(hash, waker);
        // The call may have ended between the claim and the wait: then nobody else wakes us.
        if flight::in_flight(&gw.replay, hash, now_ms).is_none() {
            gw.introspection_ended(hash);
        }
        stream.count("introspection_followed", 1);
        return Some(Held::Following);
    }
    let call_headers = request.header_pairs();
    match stream.callout(
        &request.cluster,
        &call_headers,
        &request.body,
        request.timeout_ms,
    ) {
        Some(call) => Some(Held::Asking(IntrospectionCall {
            call,
            provider,
            token,
        })),
        None => {
            end_flight(gw, hash);
            refuse_unreachable(gw, stream, headers, now_ms)
        }
    }
}

fn refuse_unreachable(
    gw: &Gateway,
    stream: &mut impl Stream,
    headers: &[(&str, &str)],
    now_ms: u64,
) -> Option<Held> {
    log(
        Level::Error,
        "oauth2-gateway: cannot call the introspection endpoint (is its cluster defined?)",
    );
    stream.count("introspection_call_failed", 1);
    let plan = request::deny_plan(gw, headers, &Denial::IntrospectionUnavailable);
    request::execute(gw, stream, plan, now_ms);
    None
}

/// The flight of a token ends: its answer is in the cache (or there is none to wait for).
fn end_flight(gw: &Gateway, hash: u64) {
    flight::release(&gw.replay, hash);
    gw.introspection_ended(hash);
}

/// The stream asking about a token ended before the answer: whoever follows it is woken (and,
/// finding no answer, refused with 503 rather than held until its own timeout).
pub fn abandon(gw: &Gateway, pending: &IntrospectionCall) {
    end_flight(gw, pending.hash());
}

/// A request held on another request's call was woken: decided from the shared cache (503
/// when that call left no answer: it failed, and the provider is not asked again at once).
/// Returns the logout sequence the request started, if it is a logout.
pub fn on_woken(
    gw: &Gateway,
    stream: &mut impl Stream,
    headers: &[(&str, &str)],
    now_ms: u64,
) -> Option<LogoutFlow> {
    let plan = request::plan(gw, headers, now_ms);
    decide_again(gw, stream, plan, headers, now_ms)
}

/// Executes the decision made with the answer in the cache (503 when it still asks for an
/// introspection: never ask in a loop); the logout sequence it started, if any.
fn decide_again(
    gw: &Gateway,
    stream: &mut impl Stream,
    plan: request::Plan,
    headers: &[(&str, &str)],
    now_ms: u64,
) -> Option<LogoutFlow> {
    let plan = match plan {
        request::Plan::Introspect { .. } => {
            request::deny_plan(gw, headers, &Denial::IntrospectionUnavailable)
        }
        other => other,
    };
    let (next, flow) = request::execute(gw, stream, plan, now_ms);
    if next == Next::Continue {
        stream.continue_request();
    }
    flow
}

/// The provider answered (`status` `None`: no answer): keeps the answer, decides the request
/// again, and lets it through or refuses it (or starts its logout: the sequence is returned).
/// `headers` are the request's.
pub fn on_answer(
    gw: &Gateway,
    stream: &mut impl Stream,
    pending: &IntrospectionCall,
    answer: (Option<u32>, &[u8]),
    headers: &[(&str, &str)],
    now_ms: u64,
) -> Option<LogoutFlow> {
    let keys = gw.keys();
    let empty = filter::jose::jwk::KeySet::default();
    let cx = AnswerContext {
        keys: keys.sets.get(pending.provider).unwrap_or(&empty),
        now: now_ms / 1_000,
        native: Some(&keys.parsed),
        shared: &gw.replay,
    };
    let (status, body) = answer;
    let mut outcome = complete(
        &gw.config,
        cx,
        pending.provider,
        &pending.token,
        status,
        body,
    );
    if outcome == Err(Denial::UnknownKey) {
        // An RFC 9701 answer signed by a key not fetched yet: an early (throttled) key fetch.
        gw.request_early_refresh(pending.provider);
        outcome = Err(Denial::IntrospectionUnavailable);
    }
    let counter = match &outcome {
        Err(Denial::IntrospectionUnavailable) => "introspection_call_failed",
        _ => "introspection_call_ok",
    };
    stream.count(counter, 1);
    end_flight(gw, pending.hash());
    let plan = match outcome {
        // Decided again: the answer is in the shared cache now.
        Ok(()) => request::plan(gw, headers, now_ms),
        Err(denial) => request::deny_plan(gw, headers, &denial),
    };
    decide_again(gw, stream, plan, headers, now_ms)
}
