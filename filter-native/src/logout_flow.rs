//! Executing the core's logout state machine on one stream: both calls go out through the
//! stream's own callouts, answers are fed back, the token is denied on every worker as soon as the
//! IDP confirms, and the client gets exactly one answer.

use crate::host::Stream;
use crate::log::{Level, log};
use crate::shared::Gateway;
use filter::logout::{
    CallResult, LogoutMachine, LogoutResponse, Step, begin_logout, local_revocations,
};
use filter::shared_state::denylist_store::Revocation;
use filter::validation::verified_token::VerifiedToken;
use std::collections::HashMap;

pub struct LogoutFlow {
    machine: LogoutMachine,
    /// callout id → (step, started at ms, timeout ms)
    calls: HashMap<u64, (Step, u64, u64)>,
    /// What this gateway records once the provider confirms (see [`local_revocations`]).
    revocations: Vec<Revocation>,
    revoked_here: bool,
}

impl LogoutFlow {
    /// Starts the sequence; `Err` with the response at once when no call could be made at all.
    pub fn start(
        gw: &Gateway,
        stream: &mut impl Stream,
        token: &str,
        verified: &VerifiedToken,
        already_revoked: bool,
        now_ms: u64,
    ) -> Result<LogoutFlow, LogoutResponse> {
        // Revocation goes to the token's own provider, or nowhere (logout refused).
        let discovered = gw.discovered(verified.provider);
        let (machine, requests) = begin_logout(
            &gw.config,
            token,
            verified,
            already_revoked,
            &discovered,
            now_ms / 1_000,
        )?;
        let mut flow = LogoutFlow {
            machine,
            calls: HashMap::new(),
            revocations: local_revocations(&gw.config, verified, now_ms / 1_000),
            revoked_here: false,
        };
        for (step, request) in requests {
            let headers = request.header_pairs();
            match stream.callout(
                &request.cluster,
                &headers,
                &request.body,
                request.timeout_ms,
            ) {
                Some(id) => {
                    flow.calls.insert(id, (step, now_ms, request.timeout_ms));
                }
                None => {
                    log(
                        Level::Error,
                        &format!(
                            "oauth2-gateway: cannot call cluster {:?} for logout step {step:?} (is the cluster defined?)",
                            request.cluster
                        ),
                    );
                    if let Some(response) = flow.complete(gw, step, CallResult::Unreachable, now_ms)
                    {
                        return Err(response);
                    }
                }
            }
        }
        Ok(flow)
    }

    /// Feeds one callout answer (`status` `None`: no response); `Some` when the client can be
    /// answered. An unknown or repeated id changes nothing.
    pub fn on_answer(
        &mut self,
        gw: &Gateway,
        call: u64,
        status: Option<u32>,
        body: &[u8],
        now_ms: u64,
    ) -> Option<LogoutResponse> {
        let (step, started_ms, timeout_ms) = self.calls.remove(&call)?;
        let timed_out = now_ms.saturating_sub(started_ms) + 50 >= timeout_ms;
        let result = CallResult::of_answer(step, status, timed_out, || Some(body.to_vec()));
        log(
            Level::Debug,
            &format!("oauth2-gateway: logout step {step:?}: {result:?}"),
        );
        self.complete(gw, step, result, now_ms)
    }

    fn complete(
        &mut self,
        gw: &Gateway,
        step: Step,
        result: CallResult,
        now_ms: u64,
    ) -> Option<LogoutResponse> {
        let response = self.machine.complete(step, result);
        if self.machine.idp_confirmed() && !self.revoked_here {
            self.revoked_here = true;
            gw.revoke(&self.revocations, now_ms);
        }
        response
    }
}
