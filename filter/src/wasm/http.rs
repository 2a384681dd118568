//! The HTTP context: strips forged claim headers, asks the core for a decision, and executes it —
//! including the logout sequence on the logout path.

use super::admission::{Admitted, admit, deny, reply, with_knowledge};
use super::backchannel;
use super::host::{self, log_at};
use super::introspection::{self, Held};
use super::logout_flow::LogoutFlow;
use super::worker::Worker;
use crate::admission::gateway::{logout_introspection, logout_subject};
use crate::http::denial::Denial;
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
    /// This stream's context id (a woken follower is reached by it).
    context_id: u32,
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
    fn is_following(&self) -> bool {
        self.worker.as_ref().is_some_and(|w| {
            w.followers
                .borrow()
                .iter()
                .any(|f| f.context_id == self.context_id)
        })
    }

    pub fn new(worker: Option<Rc<Worker>>, context_id: u32) -> Self {
        Http {
            worker,
            context_id,
            logout: None,
            backchannel: false,
            hub_call: None,
            introspection: None,
            introspected: false,
        }
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
        reply(answer.status, &headers, "application/json", &answer.body)
    }

    fn answer_logout(&self, worker: &Worker, response: &LogoutResponse) -> Action {
        let outcome = if response.status == 200 {
            "logout_ok"
        } else {
            "logout_failed"
        };
        worker.metrics.increment(outcome);
        reply(response.status, &[], "application/json", &response.body)
    }

    fn logout(
        &mut self,
        worker: &Worker,
        path: &str,
        headers: &[(&str, &str)],
        now_ms: u64,
        revocations_loaded: bool,
    ) -> Action {
        // An opaque token this gateway has no answer for: asked about first (by this request:
        // a logout follows no one), then the logout runs from the answer.
        if !self.introspected
            && let Some((provider, token)) = with_knowledge(
                worker,
                now_ms,
                revocations_loaded,
                |k| logout_introspection(&worker.config, k, path, headers),
                |_| false,
            )
        {
            return match introspection::ask(worker, provider, token) {
                Ok(pending) => {
                    self.introspection = Some(pending);
                    Action::Pause
                }
                Err(denial) => deny(worker, headers, &denial),
            };
        }
        let subject = with_knowledge(
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
            Err(denial) => return deny(worker, headers, &denial),
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
    fn on_done(&mut self) -> bool {
        if let Some(worker) = self.worker.clone() {
            // A stream that ends while it asks about a token: its followers are woken (and,
            // finding no answer, refused with 503 rather than held until their timeout).
            if let Some(pending) = self.introspection.take() {
                introspection::end_flight(&worker, pending.hash(), self.context_id);
            }
            introspection::forget_follower(&worker, self.context_id);
        }
        true
    }

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
            let answer = introspection::on_answer(&worker, &pending, headers, body);
            // The answer is in the cache (or there is none): this VM's followers go first.
            introspection::end_flight(&worker, pending.hash(), self.context_id);
            match answer {
                // Decided again, from the shared cache now.
                Ok(()) => {
                    self.introspected = true;
                    if let Action::Continue = self.on_http_request_headers(0, false) {
                        host::resume_request();
                    }
                }
                Err(denial) => {
                    let request = host::request_headers();
                    deny(&worker, &request.pairs(), &denial);
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
            return reply(
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
                return reply(
                    405,
                    &[("allow", "POST")],
                    "text/plain; charset=utf-8",
                    "use POST\n",
                );
            }
            return self.logout(&worker, path, &pairs, now_ms, revocations_loaded);
        }

        match admit(&worker, &pairs, method, path, now_ms, revocations_loaded) {
            Admitted::Done(action) => action,
            // Asked once already: the answer could not be kept; never ask in a loop.
            Admitted::Introspect { .. } if self.introspected => {
                deny(&worker, &pairs, &Denial::IntrospectionUnavailable)
            }
            Admitted::Introspect { provider, token } => {
                match introspection::start(&worker, self.context_id, provider, token) {
                    Ok(Held::Asking(pending)) => {
                        self.introspection = Some(pending);
                        Action::Pause
                    }
                    Ok(Held::Following) => Action::Pause,
                    Err(denial) => deny(&worker, &pairs, &denial),
                }
            }
        }
    }

    /// A back-channel logout request's headers went on before its body (see
    /// `answer_backchannel`): an upstream that answers meanwhile is held here, and the filter's
    /// own answer replaces it (Envoy sends a local reply directly while the response headers are
    /// held by a filter). When the body is not complete yet, Envoy will not hand the filter the
    /// rest once the upstream's answer is complete: the OP is answered 503 at once (it delivers
    /// the token again) rather than left without an answer. Envoy's buffer filter on that route
    /// prevents it (docs/logout-and-revocation.md, "Back-channel logout").
    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.backchannel
            && let Some(worker) = self.worker.clone()
        {
            self.backchannel = false;
            log_at!(
                Warn,
                "oauth2-gateway: a back-channel logout request's body had not arrived when the route's upstream answered: answered 503; buffer that route (envoy.filters.http.buffer, see the docs)"
            );
            let answer = ReceiverAnswer::unavailable(
                "the logout token's body did not arrive before the route answered; retry",
            );
            return self.send_backchannel(&worker, &answer);
        }
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
        if self.logout.is_some()
            || self.hub_call.is_some()
            || self.introspection.is_some()
            || self.is_following()
        {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}
