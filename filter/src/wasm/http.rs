//! The HTTP context: strips forged claim headers, asks the core for a decision, and executes it —
//! including the logout sequence on the logout path.

use super::backchannel;
use super::host::{self, log_at};
use super::introspection;
use super::logout_flow::LogoutFlow;
use super::shared_data::HostShared;
use super::worker::Worker;
use crate::admission::gateway::{
    Knowledge, Outcome, RequestInfo, decide, denial_response, find_request_token, logout_subject,
    unverified_issuer,
};
use crate::http::denial::Denial;
use crate::http::denial::DpopDenial;
use crate::jose::signature::NativeVerifier;
use crate::logout::LogoutResponse;
use crate::logout::backchannel_receiver::{ReceiverAnswer, is_backchannel_path};
use crate::logout::is_logout_path;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

/// One request. On responses the filter only holds an upstream's answer to a back-channel logout
/// request it is still deciding (a local reply of ours passes through that callback too: it is
/// let through once the decision is made).
pub struct Http {
    worker: Option<Rc<Worker>>,
    /// Set while a logout sequence runs for this request.
    logout: Option<LogoutFlow>,
    /// Set while the body of a back-channel logout request is collected.
    backchannel: bool,
    /// The callout forwarding a back-channel logout token to the revocation hub.
    hub_call: Option<u32>,
    /// The introspection this paused request waits for.
    introspection: Option<introspection::Pending>,
    /// The request was decided again after an introspection (never ask twice).
    introspected: bool,
}

impl Http {
    pub fn new(worker: Option<Rc<Worker>>) -> Self {
        Http {
            worker,
            logout: None,
            backchannel: false,
            hub_call: None,
            introspection: None,
            introspected: false,
        }
    }

    fn reply(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        content_type: &str,
        body: &str,
    ) -> Action {
        // An empty body has no type (Envoy drops it from such a local reply anyway).
        let mut all = vec![("cache-control", "no-store")];
        if !body.is_empty() {
            all.push(("content-type", content_type));
        }
        all.extend_from_slice(headers);
        host::send_response(status, &all, body.as_bytes());
        Action::Pause
    }

    fn deny(&self, worker: &Worker, headers: &[(&str, &str)], denial: &Denial) -> Action {
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
        self.reply(
            response.status,
            &headers,
            "text/plain; charset=utf-8",
            response.body,
        )
    }

    fn answer_backchannel(&mut self, worker: &Worker, step: backchannel::Step) -> Action {
        match step {
            // Envoy hands a proxy-wasm filter the body only once its headers went on (a paused
            // headers callback stops the body too: proxy-wasm-cpp-host turns it into
            // StopAllIterationAndWatermark). So the headers continue, the body is held until
            // it is complete, and the filter answers: the route's upstream may see the headers
            // start, never the body (its request is reset by the answer). The native module
            // holds the headers (see docs/logout-and-revocation.md, "Back-channel logout").
            backchannel::Step::Collect => {
                self.backchannel = true;
                Action::Continue
            }
            backchannel::Step::Answer(answer) => {
                self.backchannel = false;
                self.send_backchannel(worker, &answer)
            }
            backchannel::Step::Forwarded(call) => {
                self.backchannel = false;
                self.hub_call = Some(call);
                Action::Pause
            }
        }
    }

    fn send_backchannel(&self, worker: &Worker, answer: &ReceiverAnswer) -> Action {
        worker.metrics.increment(answer.counter);
        log_at!(
            Info,
            "oauth2-gateway: back-channel logout answered {}: {}",
            answer.status,
            answer.counter
        );
        let headers: Vec<(&str, &str)> = answer
            .headers
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        self.reply(answer.status, &headers, "application/json", &answer.body)
    }

    fn answer_logout(&self, worker: &Worker, response: &LogoutResponse) -> Action {
        let outcome = if response.status == 200 {
            "logout_ok"
        } else {
            "logout_failed"
        };
        worker.metrics.increment(outcome);
        self.reply(response.status, &[], "application/json", &response.body)
    }

    /// Runs `f` with what this VM knows now (keys, denylist, time); when the answer is "no such
    /// key" or "no keys", looks at the shared data once more (another thread may have fetched)
    /// and retries.
    fn with_knowledge<T>(
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

    fn logout(
        &mut self,
        worker: &Worker,
        path: &str,
        headers: &[(&str, &str)],
        now_ms: u64,
        revocations_loaded: bool,
    ) -> Action {
        let subject = Self::with_knowledge(
            worker,
            now_ms,
            revocations_loaded,
            |k| {
                logout_subject(&worker.config, k, path, headers)
                    .map(|(t, v, r)| (t.to_owned(), v, r))
            },
            |r| matches!(r, Err(Denial::NoKeys | Denial::UnknownKey)),
        );
        let (token, verified, already_revoked) = match subject {
            Ok(s) => s,
            Err(denial) => return self.deny(worker, headers, &denial),
        };
        match LogoutFlow::start(worker, &token, &verified, already_revoked) {
            Ok(flow) => {
                self.logout = Some(flow);
                Action::Pause
            }
            Err(response) => self.answer_logout(worker, &response),
        }
    }
}

impl Context for Http {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _trailers: usize) {
        let Some(worker) = self.worker.clone() else {
            return;
        };
        if self.hub_call == Some(token) {
            self.hub_call = None;
            let answer = backchannel::on_hub_answer(headers, body);
            self.send_backchannel(&worker, &answer);
            return;
        }
        if let Some(pending) = self.introspection.take_if(|p| p.call == token) {
            match introspection::on_answer(&worker, &pending, headers, body) {
                // Decided again, from the shared cache now.
                Ok(()) => {
                    self.introspected = true;
                    if let Action::Continue = self.on_http_request_headers(0, false) {
                        host::resume_request();
                    }
                }
                Err(denial) => {
                    let request = host::request_headers();
                    self.deny(&worker, &request.pairs(), &denial);
                }
            }
            return;
        }
        let Some(flow) = self.logout.as_mut() else {
            return;
        };
        if let Some(response) = flow.on_answer(&worker, token, headers, body) {
            self.logout = None;
            self.answer_logout(&worker, &response);
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else {
            // The plugin is not configured (its configuration was refused): fail closed.
            return self.reply(
                503,
                &[],
                "text/plain; charset=utf-8",
                "gateway misconfigured\n",
            );
        };
        let headers = host::request_headers();
        let pairs = headers.pairs();
        // Inbound copies of the headers the filter sets are removed (a client cannot forge them);
        // only those present cost a host call.
        for (name, _) in &worker.config.claim_headers {
            if pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
                host::remove_request_header(name);
            }
        }
        let value = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        // Whether the feed was read up to date (a host call only until this VM has seen it), read
        // before the denylist so that the list read next holds what that read brought.
        let revocations_loaded = worker.revocations_loaded();
        // Revocations made by another worker of this Envoy (a logout) apply at once, not at the
        // next tick: one small shared-data read per request — only when something can revoke.
        if worker.config.revokes() {
            worker.sync_denylist();
        }
        let method = value(":method").unwrap_or("");
        let path = value(":path").unwrap_or("/");
        let now_ms = host::now_ms();

        if is_backchannel_path(&worker.config, path) {
            let step = backchannel::on_headers(&worker, method, &pairs, end_of_stream, now_ms);
            return self.answer_backchannel(&worker, step);
        }

        if is_logout_path(&worker.config, path) {
            if method != "POST" {
                return self.reply(
                    405,
                    &[("allow", "POST")],
                    "text/plain; charset=utf-8",
                    "use POST\n",
                );
            }
            return self.logout(&worker, path, &pairs, now_ms, revocations_loaded);
        }

        let request = RequestInfo {
            method,
            path,
            headers: &pairs,
        };
        let outcome = Self::with_knowledge(
            &worker,
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
            if let Some(provider) = find_request_token(&worker.config, path, &pairs)
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
                // Their inbound copies were removed above: added, not set (no lookup).
                for (name, value) in token.iter().flat_map(|t| &t.claim_headers) {
                    host::add_request_header(name, value);
                }
                for (name, value) in &headers {
                    host::set_request_header(name, Some(value));
                }
                worker.metrics.increment("allowed");
                Action::Continue
            }
            Outcome::Deny(denial) => self.deny(&worker, &pairs, &denial),
            // Asked once already: the answer could not be kept; never ask in a loop.
            Outcome::Introspect { .. } if self.introspected => {
                self.deny(&worker, &pairs, &Denial::IntrospectionUnavailable)
            }
            Outcome::Introspect { provider, token } => {
                match introspection::start(&worker, provider, token) {
                    Ok(pending) => {
                        self.introspection = Some(pending);
                        Action::Pause
                    }
                    Err(denial) => self.deny(&worker, &pairs, &denial),
                }
            }
        }
    }

    /// A back-channel logout request's headers went on before its body (see
    /// `answer_backchannel`): an upstream that answers meanwhile is held here, and the filter's
    /// own answer replaces it (Envoy sends a local reply directly while the response headers are
    /// held by a filter).
    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.backchannel || self.hub_call.is_some() {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.backchannel
            && let Some(worker) = self.worker.clone()
        {
            let step = backchannel::on_body(&worker, body_size, end_of_stream, host::now_ms());
            return match step {
                // Held (buffered) until the body is complete.
                backchannel::Step::Collect => Action::Pause,
                step => self.answer_backchannel(&worker, step),
            };
        }
        // While a logout runs the request must not continue upstream (nor be buffered forever:
        // the logout answers with a local reply, which ends the stream).
        if self.logout.is_some() || self.hub_call.is_some() || self.introspection.is_some() {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}
