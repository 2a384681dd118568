//! The HTTP context: strips forged claim headers, asks the core for a decision, and executes it.

use super::host::{self, log_at};
use super::worker::Worker;
use crate::denial::Denial;
use crate::gateway::{Outcome, RequestInfo, decide, unverified_issuer};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

/// One request. The filter has nothing to do on responses, so it registers no response callback
/// (a local reply of ours would otherwise pass through it too).
pub struct Http {
    worker: Option<Rc<Worker>>,
}

impl Http {
    pub fn new(worker: Option<Rc<Worker>>) -> Self {
        Http { worker }
    }

    fn reply(&self, status: u32, headers: &[(&str, &str)], body: &str) -> Action {
        let mut all = vec![
            ("content-type", "text/plain; charset=utf-8"),
            ("cache-control", "no-store"),
        ];
        all.extend_from_slice(headers);
        host::send_response(status, &all, body.as_bytes());
        Action::Pause
    }

    fn deny(&self, worker: &Worker, denial: &Denial) -> Action {
        worker
            .metrics
            .increment(&format!("denied.{}", denial.metric_name()));
        log_at!(Debug, "oauth2-gateway: request denied: {denial:?}");
        let response = denial.response(&worker.config.realm);
        let challenge = response.www_authenticate.as_deref();
        let headers: Vec<(&str, &str)> = challenge
            .map(|c| ("www-authenticate", c))
            .into_iter()
            .collect();
        self.reply(response.status, &headers, response.body)
    }
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else {
            // The plugin is not configured (its configuration was refused): fail closed.
            return self.reply(503, &[], "gateway misconfigured\n");
        };
        for (name, _) in &worker.config.claim_headers {
            host::remove_request_header(name);
        }
        let headers = host::request_headers();
        let value = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let authorization: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str())
            .collect();
        let request = RequestInfo {
            method: value(":method").unwrap_or(""),
            path: value(":path").unwrap_or("/"),
            authorization: &authorization,
        };
        let now_ms = host::now_ms();
        let run = || {
            let keys = worker.keys();
            decide(
                &worker.config,
                &Worker::key_sets(&keys),
                request,
                now_ms / 1_000,
            )
        };
        let mut outcome = run();
        if let Outcome::Deny(Denial::NoKeys | Denial::UnknownKey) = outcome {
            // Another thread may have fetched newer keys since our last tick.
            worker.sync_keys();
            outcome = run();
            if let Outcome::Deny(Denial::UnknownKey) = outcome {
                let issuer = unverified_issuer(&authorization);
                if let Some(provider) = issuer.and_then(|iss| worker.provider_of(&iss)) {
                    worker.request_early_refresh(provider, now_ms);
                }
            }
        }
        match outcome {
            Outcome::Forward {
                headers,
                remove_authorization,
                ..
            } => {
                for (name, value) in &headers {
                    host::set_request_header(name, Some(value));
                }
                if remove_authorization {
                    host::remove_request_header("authorization");
                }
                worker.metrics.increment("allowed");
                Action::Continue
            }
            Outcome::Deny(denial) => self.deny(&worker, &denial),
        }
    }
}
