//! An opaque token (or any token of a provider that introspects every token) in the Wasm host:
//! the request is paused while the provider is asked (RFC 7662), the answer goes into the shared
//! cache through the core ([`crate::validation::introspection::complete`]), and the HTTP context then decides
//! the request again — now from the cache.

use super::host::{self, log_at};
use super::shared_data::HostShared;
use super::worker::Worker;
use crate::http::denial::Denial;
use crate::jose::jwk::KeySet;
use crate::jose::signature::NativeVerifier;
use crate::validation::introspection::{AnswerContext, complete, request};
use std::time::Duration;

/// The introspection a paused request waits for.
pub struct Pending {
    pub call: u32,
    provider: usize,
    token: String,
}

/// Asks provider `provider` about `token`; `Err` with the refusal when no call could be made.
pub fn start(worker: &Worker, provider: usize, token: String) -> Result<Pending, Denial> {
    let Some(call) = request(
        &worker.config,
        provider,
        &token,
        &worker.discovered(provider),
    ) else {
        return Err(Denial::IntrospectionUnavailable);
    };
    let headers = call.header_pairs();
    let timeout = Duration::from_millis(call.timeout_ms);
    match host::dispatch(&call.cluster, &headers, Some(&call.body), timeout) {
        Some(id) => Ok(Pending {
            call: id,
            provider,
            token,
        }),
        None => {
            worker.metrics.increment("introspection_call_failed");
            Err(Denial::IntrospectionUnavailable)
        }
    }
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
