//! The Wasm host's admission of one request: the core's decision over what this VM knows now,
//! executed on the current stream (headers added or removed, a refusal sent). Used by the HTTP
//! context and, for a request woken after another's introspection, by whoever woke it.

use super::host::{self, log_at};
use super::shared_data::HostShared;
use super::worker::Worker;
use crate::admission::gateway::{
    Knowledge, Outcome, RequestInfo, decide, denial_response, find_request_token, unverified_issuer,
};
use crate::http::denial::{Denial, DpopDenial};
use crate::jose::signature::NativeVerifier;
use proxy_wasm::types::Action;

/// What admission did with a request.
pub enum Admitted {
    /// Forwarded (`Continue`) or answered (`Pause`).
    Done(Action),
    /// The token must be introspected first.
    Introspect { provider: usize, token: String },
}

pub fn reply(status: u32, headers: &[(&str, &str)], content_type: &str, body: &str) -> Action {
    // An empty body has no type (Envoy drops it from such a local reply anyway).
    let mut all = vec![("cache-control", "no-store")];
    if !body.is_empty() {
        all.push(("content-type", content_type));
    }
    all.extend_from_slice(headers);
    host::send_response(status, &all, body.as_bytes());
    Action::Pause
}

pub fn deny(worker: &Worker, headers: &[(&str, &str)], denial: &Denial) -> Action {
    worker
        .metrics
        .increment(&format!("denied.{}", denial.metric_name()));
    if let Denial::Dpop(DpopDenial::ReplayCacheFull | DpopDenial::ReplayCacheError) = denial {
        log_at!(
            Error,
            "oauth2-gateway: DPoP replay cache cannot take a proof ({denial:?}): DPoP requests are refused (fail closed); raise dpop_replay_cache_entries"
        );
    } else if *denial == Denial::RevocationsNotLoaded {
        worker.warn_not_loaded();
    } else {
        log_at!(Debug, "oauth2-gateway: request denied: {denial:?}");
    }
    let response = denial_response(&worker.config, headers, denial);
    let challenge = response.www_authenticate.as_deref();
    let headers: Vec<(&str, &str)> = challenge
        .map(|c| ("www-authenticate", c))
        .into_iter()
        .chain(response.retry_after().map(|r| ("retry-after", r)))
        .collect();
    reply(
        response.status,
        &headers,
        "text/plain; charset=utf-8",
        response.body,
    )
}

/// Runs `f` with what this VM knows now (keys, denylist, time); when the answer is "no such
/// key" or "no keys", looks at the shared data once more (another thread may have fetched)
/// and retries.
pub fn with_knowledge<T>(
    worker: &Worker,
    now_ms: u64,
    revocations_loaded: bool,
    f: impl Fn(Knowledge<'_>) -> T,
    needs_keys: impl Fn(&T) -> bool,
) -> T {
    let run = || {
        let keys = worker.keys();
        let sets = Worker::key_sets(&keys);
        let denylist = worker.denylist();
        let native = worker.native.as_ref().map(|n| n as &dyn NativeVerifier);
        f(Knowledge {
            keys: &sets,
            denylist: &denylist,
            now: now_ms / 1_000,
            revocations_loaded,
            native,
            replay: &HostShared,
        })
    };
    let first = run();
    if !needs_keys(&first) {
        return first;
    }
    worker.sync_keys();
    run()
}

/// Decides about the current stream's request (its headers `pairs`) and executes the decision.
pub fn admit(
    worker: &Worker,
    pairs: &[(&str, &str)],
    method: &str,
    path: &str,
    now_ms: u64,
    revocations_loaded: bool,
) -> Admitted {
    let request = RequestInfo {
        method,
        path,
        headers: pairs,
    };
    let outcome = with_knowledge(
        worker,
        now_ms,
        revocations_loaded,
        |k| decide(&worker.config, k, request, &mut worker.cache.borrow_mut()),
        |o| matches!(o, Outcome::Deny(Denial::NoKeys | Denial::UnknownKey)),
    );
    let (hits, misses) = worker.cache.borrow_mut().take_stats();
    worker.metrics.add("cache_hit", hits);
    worker.metrics.add("cache_miss", misses);
    if let Some(native) = &worker.native {
        worker.metrics.add("verify_native", native.take_calls());
    }
    if let Outcome::Deny(Denial::UnknownKey) = outcome {
        // Perhaps the IDP rotated its keys: ask for an early (throttled) JWKS fetch.
        if let Some(provider) = find_request_token(&worker.config, path, pairs)
            .ok()
            .flatten()
            .and_then(|found| unverified_issuer(found.token))
            .and_then(|iss| worker.provider_of(&iss))
        {
            worker.request_early_refresh(provider, now_ms);
        }
    }
    match outcome {
        Outcome::Forward {
            headers,
            remove_headers,
            token,
        } => {
            for name in &remove_headers {
                host::remove_request_header(name);
            }
            // Their inbound copies were removed before: added, not set (no lookup).
            for (name, value) in token.iter().flat_map(|t| &t.claim_headers) {
                host::add_request_header(name, value);
            }
            for (name, value) in &headers {
                host::set_request_header(name, Some(value));
            }
            worker.metrics.increment("allowed");
            Admitted::Done(Action::Continue)
        }
        Outcome::Deny(denial) => Admitted::Done(deny(worker, pairs, &denial)),
        Outcome::Introspect { provider, token } => Admitted::Introspect { provider, token },
    }
}

/// The current stream (paused, following another request's introspection of its token) is
/// decided again, from the shared cache now; 503 when that call left no answer (it failed: the
/// provider is not asked again at once).
pub fn decide_woken(worker: &Worker) {
    let headers = host::request_headers();
    let pairs = headers.pairs();
    let value = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let method = value(":method").unwrap_or("");
    let path = value(":path").unwrap_or("/");
    let revocations_loaded = worker.revocations_loaded();
    if worker.config.revokes() {
        worker.sync_denylist();
    }
    match admit(
        worker,
        &pairs,
        method,
        path,
        host::now_ms(),
        revocations_loaded,
    ) {
        Admitted::Done(Action::Continue) => host::resume_request(),
        Admitted::Done(_) => {}
        Admitted::Introspect { .. } => {
            deny(worker, &pairs, &Denial::IntrospectionUnavailable);
        }
    }
}
