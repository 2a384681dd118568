//! The back-channel logout path in the Wasm host: the headers are checked, the body collected
//! (Envoy buffers it while the filter pauses), then the core's receiver decides and the cut-off
//! goes into the shared denylist before the provider gets its answer.

use super::host;
use super::shared_data::HostShared;
use super::worker::Worker;
use crate::jose::signature::NativeVerifier;
use crate::logout::backchannel_receiver::{
    Received, ReceiverAnswer, ReceiverContext, body_too_large, check_request, hub_verdict, receive,
};
use std::slice;
use std::time::Duration;

/// What the HTTP context does next on this path.
pub enum Step {
    /// Wait for (more of) the body.
    Collect,
    /// Answer now.
    Answer(ReceiverAnswer),
    /// The token went to the revocation hub (this callout): answer when the hub does.
    Forwarded(u32),
}

/// The request's headers arrived (`end_of_stream`: there is no body).
pub fn on_headers(
    worker: &Worker,
    method: &str,
    headers: &[(&str, &str)],
    end_of_stream: bool,
    now_ms: u64,
) -> Step {
    let Some(settings) = &worker.config.backchannel_logout else {
        return Step::Collect;
    };
    if let Err(answer) = check_request(settings, method, headers) {
        return Step::Answer(answer);
    }
    if end_of_stream {
        return decide(worker, &[], now_ms);
    }
    Step::Collect
}

/// Body bytes arrived: `size` is all Envoy has buffered so far.
pub fn on_body(worker: &Worker, size: usize, end_of_stream: bool, now_ms: u64) -> Step {
    let Some(settings) = &worker.config.backchannel_logout else {
        return Step::Collect;
    };
    if let Some(answer) = body_too_large(settings, size) {
        return Step::Answer(answer);
    }
    if !end_of_stream {
        return Step::Collect;
    }
    decide(worker, &host::request_body(size), now_ms)
}

/// The hub answered the forwarded token.
pub fn on_hub_answer(headers: usize, body_size: usize) -> ReceiverAnswer {
    hub_verdict(
        host::http_call_status(headers),
        &host::http_call_body(body_size),
    )
}

fn decide(worker: &Worker, body: &[u8], now_ms: u64) -> Step {
    let keys = worker.keys();
    let sets = Worker::key_sets(&keys);
    let native = worker.native.as_ref().map(|n| n as &dyn NativeVerifier);
    let cx = ReceiverContext {
        keys: &sets,
        now: now_ms / 1_000,
        native,
        replay: &HostShared,
    };
    let mut budget = worker.backchannel_budget.borrow_mut();
    let received = receive(&worker.config, cx, body, &mut budget, |cutoff| {
        let stored = worker.record_revocations(slice::from_ref(cutoff), now_ms);
        worker.sync_denylist();
        stored
    });
    match received {
        Received::Answer(answer) => Step::Answer(answer),
        Received::Forward(request) => {
            let headers = request.header_pairs();
            let timeout = Duration::from_millis(request.timeout_ms);
            match host::dispatch(&request.cluster, &headers, Some(&request.body), timeout) {
                Some(call) => Step::Forwarded(call),
                None => Step::Answer(hub_verdict(None, &[])),
            }
        }
    }
}
