//! Executing the core's logout state machine from an HTTP context: dispatch both calls, feed
//! answers back, deny the token locally as soon as the IDP confirms, answer the client once.

use super::host::{self, log_at};
use super::worker::Worker;
use crate::logout::{
    CallResult, LogoutMachine, LogoutResponse, Step, begin_logout, local_revocations,
};
use crate::shared_state::denylist_store::Revocation;
use crate::validation::verified_token::VerifiedToken;
use std::collections::HashMap;
use std::time::Duration;

pub struct LogoutFlow {
    machine: LogoutMachine,
    /// callout token → (step, dispatched at ms, timeout ms)
    calls: HashMap<u32, (Step, u64, u64)>,
    /// What this gateway records once the provider confirms (see [`local_revocations`]).
    revocations: Vec<Revocation>,
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
        let now_ms = host::now_ms();
        let (machine, requests) = begin_logout(
            &worker.config,
            token,
            verified,
            already_revoked,
            &worker.discovered(verified.provider),
            now_ms / 1_000,
        )?;
        let mut flow = LogoutFlow {
            machine,
            calls: HashMap::new(),
            revocations: local_revocations(&worker.config, verified, now_ms / 1_000),
            revoked_here: false,
        };
        for (step, request) in requests {
            let headers = request.header_pairs();
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
        body_size: usize,
    ) -> Option<LogoutResponse> {
        let (step, started_ms, timeout_ms) = self.calls.remove(&call)?;
        let now_ms = host::now_ms();
        let timed_out = now_ms.saturating_sub(started_ms) + 50 >= timeout_ms;
        let result =
            CallResult::of_answer(step, host::http_call_status(headers), timed_out, || {
                Some(host::http_call_body(body_size))
            });
        log_at!(Debug, "oauth2-gateway: logout step {step:?}: {result:?}");
        let response = self.machine.complete(step, result);
        if self.machine.idp_confirmed() && !self.revoked_here {
            self.revoked_here = true;
            worker.revoke_locally(&self.revocations, now_ms);
        }
        response
    }
}
