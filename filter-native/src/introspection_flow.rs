//! An opaque token (or any token of a provider that introspects every token) on one stream: the
//! request is held while the provider is asked (RFC 7662), the answer goes into the shared cache
//! through the core ([`filter::validation::introspection::complete`]), then the request is decided again — now
//! from the cache — and let through or refused.

use crate::host::Stream;
use crate::log::{Level, log};
use crate::request::{self, Next};
use crate::shared::Gateway;
use filter::http::denial::Denial;
use filter::validation::introspection::{
    AnswerContext, complete, request as introspection_request,
};

/// The introspection call a held request waits for.
pub struct IntrospectionCall {
    pub call: u64,
    provider: usize,
    token: String,
}

/// Asks provider `provider` about `token`; `None` (the request already answered with 503) when
/// the call could not be made.
pub fn start(
    gw: &Gateway,
    stream: &mut impl Stream,
    headers: &[(&str, &str)],
    provider: usize,
    token: String,
    now_ms: u64,
) -> Option<IntrospectionCall> {
    let discovered = gw.discovered(provider);
    let call =
        introspection_request(&gw.config, provider, &token, &discovered).and_then(|request| {
            let call_headers = request.header_pairs();
            stream.callout(
                &request.cluster,
                &call_headers,
                &request.body,
                request.timeout_ms,
            )
        });
    match call {
        Some(call) => Some(IntrospectionCall {
            call,
            provider,
            token,
        }),
        None => {
            log(
                Level::Error,
                "oauth2-gateway: cannot call the introspection endpoint (is its cluster defined?)",
            );
            stream.count("introspection_call_failed", 1);
            let plan = request::deny_plan(gw, headers, &Denial::IntrospectionUnavailable);
            request::execute(gw, stream, plan, now_ms);
            None
        }
    }
}

/// The provider answered (`status` `None`: no answer): keeps the answer, decides the request
/// again, and lets it through or refuses it. `headers` are the request's.
pub fn on_answer(
    gw: &Gateway,
    stream: &mut impl Stream,
    pending: &IntrospectionCall,
    answer: (Option<u32>, &[u8]),
    headers: &[(&str, &str)],
    now_ms: u64,
) {
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
    let plan = match outcome {
        // Decided again: the answer is in the shared cache now.
        Ok(()) => request::plan(gw, headers, now_ms),
        Err(denial) => request::deny_plan(gw, headers, &denial),
    };
    let plan = match plan {
        // The answer could not be kept (the cache refused it): never ask in a loop.
        request::Plan::Introspect { .. } => {
            request::deny_plan(gw, headers, &Denial::IntrospectionUnavailable)
        }
        other => other,
    };
    let (next, _) = request::execute(gw, stream, plan, now_ms);
    if next == Next::Continue {
        stream.continue_request();
    }
}
