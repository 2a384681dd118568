//! Executing the core's logout state machine from an HTTP context: dispatch both calls, feed
//! answers back, deny the token locally as soon as the IDP confirms, answer the client once.

use super::host::{self, log_at};
use super::worker::Worker;
use crate::logout::{CallResult, LogoutMachine, LogoutResponse, Step, begin_logout};
use crate::verified_token::VerifiedToken;
use std::collections::HashMap;
use std::time::Duration;

pub struct LogoutFlow {
    machine: LogoutMachine,
    /// callout token → (step, dispatched at ms, timeout ms)
    calls: HashMap<u32, (Step, u64, u64)>,
    jti: Option<String>,
    sid: Option<String>,
    exp: u64,
    revoked_here: bool,
}

impl LogoutFlow {
    /// Starts the sequence. Returns the flow, or at once the response when no call could be
    /// dispatched at all.
    pub fn start(
        worker: &Worker,
        token: &str,
        verified: &VerifiedToken,
        already_revoked: bool,
    ) -> Result<LogoutFlow, LogoutResponse> {
        // Revocation goes to the token's own provider, or nowhere (logout refused).
        let (machine, requests) = begin_logout(&worker.config, token, verified, already_revoked)?;
        let mut flow = LogoutFlow {
            machine,
            calls: HashMap::new(),
            jti: verified.jti.clone(),
            sid: verified.sid.clone(),
            exp: verified.lifetime.exp,
            revoked_here: false,
        };
        let now_ms = host::now_ms();
        for (step, request) in requests {
            let headers: Vec<(&str, &str)> = request
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let timeout = Duration::from_millis(request.timeout_ms);
            match host::dispatch(&request.cluster, &headers, Some(&request.body), timeout) {
                Some(call) => {
                    flow.calls.insert(call, (step, now_ms, request.timeout_ms));
                }
                None => {
                    if let Some(response) = flow.machine.complete(step, CallResult::Unreachable) {
                        return Err(response);
                    }
                }
            }
        }
        Ok(flow)
    }

    /// Feeds one callout answer; `Some` when the client can be answered.
    pub fn on_answer(
        &mut self,
        worker: &Worker,
        call: u32,
        headers: usize,
    ) -> Option<LogoutResponse> {
        let (step, started_ms, timeout_ms) = self.calls.remove(&call)?;
        let now_ms = host::now_ms();
        let timed_out = now_ms.saturating_sub(started_ms) + 50 >= timeout_ms;
        let result = match host::http_call_status(headers) {
            // Envoy answers a call that ran out of time with its own 504.
            Some(504) if timed_out => CallResult::TimedOut,
            Some(status) => CallResult::Status(status),
            None if timed_out => CallResult::TimedOut,
            None => CallResult::Unreachable,
        };
        log_at!(Debug, "oauth2-gateway: logout step {step:?}: {result:?}");
        let response = self.machine.complete(step, result);
        if self.machine.idp_confirmed() && !self.revoked_here {
            self.revoked_here = true;
            worker.revoke_locally(self.jti.as_deref(), self.sid.as_deref(), self.exp, now_ms);
        }
        response
    }
}
