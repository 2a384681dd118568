//! The back-channel logout path in the native host: the headers are checked when they arrive, the
//! body is held (Envoy buffers it) until its end, then the core's receiver decides and the
//! cut-off goes into the shared denylist before the provider gets its answer.

use crate::host::Stream;
use crate::shared::Gateway;
use filter::jose::jwk::KeySet;
use filter::logout::backchannel_receiver::{
    Received, ReceiverAnswer, ReceiverContext, VerificationBudget, body_too_large, hub_verdict,
    receive,
};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// Each worker's budget of logout-token signature checks, per configuration.
    static BUDGETS: RefCell<HashMap<u64, VerificationBudget>> = RefCell::new(HashMap::new());
}

/// What happened to a complete body.
pub enum Outcome {
    Answered,
    /// Forwarded to the revocation hub by this callout: answer when it does ([`on_hub_answer`]).
    Forwarded(u64),
}

/// Handles a complete body: answers it, or forwards it to the hub.
pub fn on_body(gw: &Gateway, stream: &mut impl Stream, body: &[u8], now_ms: u64) -> Outcome {
    match receive_body(gw, body, now_ms) {
        Received::Answer(reply) => {
            answer(stream, &reply);
            Outcome::Answered
        }
        Received::Forward(request) => {
            let headers = request.header_pairs();
            match stream.callout(
                &request.cluster,
                &headers,
                &request.body,
                request.timeout_ms,
            ) {
                Some(call) => Outcome::Forwarded(call),
                None => {
                    answer(stream, &hub_verdict(None, &[]));
                    Outcome::Answered
                }
            }
        }
    }
}

/// The hub answered a forwarded token (`status` `None`: no answer).
pub fn on_hub_answer(stream: &mut impl Stream, status: Option<u32>, body: &[u8]) {
    answer(stream, &hub_verdict(status, body));
}

fn receive_body(gw: &Gateway, body: &[u8], now_ms: u64) -> Received {
    let keys = gw.keys();
    let sets: Vec<&KeySet> = keys.sets.iter().collect();
    let cx = ReceiverContext {
        keys: &sets,
        now: now_ms / 1_000,
        native: Some(&keys.parsed),
        replay: &gw.replay,
    };
    BUDGETS.with(|budgets| {
        let mut budgets = budgets.borrow_mut();
        let budget = budgets.entry(gw.id).or_default();
        receive(&gw.config, cx, body, budget, |cutoff| {
            match gw.record_revocations(std::slice::from_ref(cutoff), now_ms) {
                Ok(_) => true,
                Err(why) => {
                    crate::log::log(crate::log::Level::Error, &format!("oauth2-gateway: {why}"));
                    false
                }
            }
        })
    })
}

/// Whether a body of `size` bytes so far is already too large: the answer, at once.
pub fn too_large(gw: &Gateway, size: usize) -> Option<ReceiverAnswer> {
    body_too_large(gw.config.backchannel_logout.as_ref()?, size)
}

/// Sends the answer (and counts it).
pub fn answer(stream: &mut impl Stream, answer: &ReceiverAnswer) {
    stream.count(answer.counter, 1);
    crate::log::log(
        crate::log::Level::Info,
        &format!(
            "oauth2-gateway: back-channel logout answered {}: {}",
            answer.status, answer.counter
        ),
    );
    let mut headers: Vec<(&str, &str)> = vec![("cache-control", "no-store")];
    if !answer.body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    headers.extend(answer.headers.iter().map(|(k, v)| (*k, v.as_str())));
    stream.send_response(answer.status, &headers, answer.body.as_bytes());
}
