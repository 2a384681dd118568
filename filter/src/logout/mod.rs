//! The logout sequence as a sans-IO state machine: the glue sends the two requests it is given,
//! feeds each answer (or its absence) back, and sends the one response the machine returns.
//!
//! 1. revoke the token at the IDP (RFC 7009, the gateway authenticating as a confidential client);
//! 2. tell the resource server to drop the session (`sid`, `sub`), with a shared secret header;
//! 3. for a provider whose revocations go through a revocation hub ([`crate::config::hub`]):
//!    report the cut-off to the hub, so every other gateway refuses the session's tokens too.
//!
//! The calls go out at once; the answer waits for all, and is a success only when all
//! succeeded — otherwise it names every step that failed.
//!
//! The token is revoked at its own provider's endpoint, as the gateway's client there; a token
//! whose provider has no revocation endpoint is refused at once (400 `unsupported_token_type`,
//! RFC 7009 §2.2.1) and nothing is called: it is never sent to another provider.
//!
//! Once the provider confirmed, the gateway records the logout in its own denylist
//! ([`local_revocations`]): the token's `jti`, and a **cut-off** of its session at the logout's
//! time, so every token of that session issued until now is
//! refused on every worker at once. A provider that cannot revoke its JWT access tokens (node
//! oidc-provider, and others, answer 400 `unsupported_token_type`) has not failed the logout: the
//! cut-off is the revocation, and the answer says so.

pub mod backchannel;
pub mod backchannel_receiver;

use crate::config::FilterConfig;
use crate::config::services::{Callout, IdpClient, Logout, form_encode};
use crate::http::request_path::normalise;
use crate::shared_state::denylist::{CutoffKind, IdKind};
use crate::shared_state::denylist_store::Revocation as DenylistEntry;
use crate::shared_state::discovery::DiscoveredEndpoints;
use crate::validation::verified_token::VerifiedToken;
use serde_json::json;

pub use crate::callout::{CalloutRequest, FORM};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    IdpRevocation,
    SessionRevocation,
    HubReport,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::IdpRevocation => "idp_revocation",
            Step::SessionRevocation => "resource_server_session_revocation",
            Step::HubReport => "hub_cutoff_report",
        }
    }
}

/// What happened to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// An HTTP answer with this status.
    Status(u32),
    /// No answer: the call timed out.
    TimedOut,
    /// No answer: connection refused, reset, or no healthy upstream.
    Unreachable,
    /// The provider cannot revoke this kind of token (RFC 7009 §2.2.1 `unsupported_token_type`):
    /// the gateway's own cut-off is the revocation.
    NotRevocable,
}

impl CallResult {
    fn ok(self) -> bool {
        matches!(
            self,
            CallResult::Status(200..=299) | CallResult::NotRevocable
        )
    }

    /// What a step's callout came to, as both glues read it: `status` `None` is no answer;
    /// `timed_out` when the call ran to its timeout; `body` is read only for the provider's 400.
    pub fn of_answer(
        step: Step,
        status: Option<u32>,
        timed_out: bool,
        body: impl FnOnce() -> Option<Vec<u8>>,
    ) -> CallResult {
        match status {
            // Envoy answers a call that ran out of time with its own 504.
            Some(504) if timed_out => CallResult::TimedOut,
            Some(400) if step == Step::IdpRevocation && names_unsupported_type(body()) => {
                CallResult::NotRevocable
            }
            Some(status) => CallResult::Status(status),
            None if timed_out => CallResult::TimedOut,
            None => CallResult::Unreachable,
        }
    }
}

/// Whether an RFC 7009 error answer is `unsupported_token_type`.
fn names_unsupported_type(body: Option<Vec<u8>>) -> bool {
    body.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("error").and_then(|e| e.as_str()) == Some("unsupported_token_type"))
}

/// What a logout cuts off: the token's session; for a token that names no session but has a
/// `jti`, nothing beyond that token (its `jti` entry: other tokens of the same subject, such as a
/// client's other client-credentials tokens, are not the logout's); for a token with neither,
/// its subject, the only way left to refuse it.
fn cutoff_of(token: &VerifiedToken) -> Option<(CutoffKind, &String)> {
    match (&token.sid, &token.jti, &token.sub) {
        (Some(sid), _, _) => Some((CutoffKind::Session, sid)),
        (None, None, Some(sub)) => Some((CutoffKind::Subject, sub)),
        _ => None,
    }
}

/// What the gateway records in its denylist once a logout's revocation is confirmed (see the
/// module's documentation): the token's `jti` until it expires, and a cut-off at `now` of its
/// session, or of its subject when it has no `sid`, kept for the provider's longest token
/// lifetime.
pub fn local_revocations(
    config: &FilterConfig,
    token: &VerifiedToken,
    now: u64,
) -> Vec<DenylistEntry> {
    let mut entries = Vec::with_capacity(2);
    if let Some(jti) = &token.jti {
        entries.push(DenylistEntry::new(IdKind::Jti, jti, token.lifetime.exp));
    }
    if let Some(provider) = config.providers.get(token.provider) {
        let forget_at = now.saturating_add(provider.max_token_lifetime_seconds);
        let Some((kind, id)) = cutoff_of(token) else {
            return entries;
        };
        entries.push(DenylistEntry::cutoff(
            kind,
            &provider.issuer,
            id,
            now,
            forget_at,
        ));
    }
    entries
}

/// The final answer to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    pub status: u32,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutMachine {
    /// Each step of this logout and its result once known, in [`Step`] order.
    results: Vec<(Step, Option<CallResult>)>,
    finished: bool,
    already_revoked: bool,
}

const NOT_REVOCABLE: &str = "logout successful: the identity provider does not revoke these tokens (unsupported_token_type), so this gateway refuses them from now on (a cut-off of the session)";

/// What the token being logged out says about itself.
#[derive(Debug, Clone, Copy)]
pub struct LogoutSubject<'a> {
    pub token: &'a str,
    pub sid: Option<&'a str>,
    pub sub: Option<&'a str>,
    /// The token was already on this gateway's denylist (a repeated logout).
    pub already_revoked: bool,
}

/// Whether `path` (the request's `:path`) is the configured logout path, compared after the same
/// normalisation rules see (so `//oauth2/logout` or `/x/../oauth2/logout` is the logout too; an
/// ambiguous path is not, and `decide` refuses it). Both glues ask this before anything else.
pub fn is_logout_path(config: &FilterConfig, path: &str) -> bool {
    config
        .logout
        .as_ref()
        .is_some_and(|logout| normalise(path).is_ok_and(|n| n.path == logout.path.as_str()))
}

/// Where a logout revokes a token, resolved: the endpoint (configured, or discovered) and the
/// gateway's client there.
#[derive(Debug, Clone, Copy)]
pub struct RevokeAt<'a> {
    pub endpoint: &'a Callout,
    pub client: &'a IdpClient,
}

/// The logout configuration and the revocation endpoint of the token's provider (index
/// `provider` in configuration order; `discovered`: what its discovery document gave, if it has
/// one); `Err` is the answer when logout is not possible for it.
pub fn logout_plan<'a>(
    config: &'a FilterConfig,
    provider: usize,
    discovered: &'a DiscoveredEndpoints,
) -> Result<(&'a Logout, RevokeAt<'a>), LogoutResponse> {
    let Some(logout) = &config.logout else {
        return Err(LogoutResponse {
            status: 404,
            body: String::new(),
        });
    };
    let Some(revocation) = config
        .providers
        .get(provider)
        .and_then(|p| p.revocation.as_ref())
    else {
        return Err(LogoutResponse {
            status: 400,
            body: json!({
                "status": "logout_refused",
                "error": "unsupported_token_type",
                "error_description": "logout cannot revoke tokens of this issuer: no revocation endpoint is configured for it",
            })
            .to_string(),
        });
    };
    match revocation.endpoint.as_ref().or(discovered.revocation.as_ref()) {
        Some(endpoint) => Ok((
            logout,
            RevokeAt {
                endpoint,
                client: &revocation.client,
            },
        )),
        // Discovery has not given it yet (or the document has none): nothing was revoked, the
        // client may retry.
        None => Err(LogoutResponse {
            status: 503,
            body: json!({
                "status": "logout_failed",
                "error": "temporarily_unavailable",
                "error_description": "the revocation endpoint of this issuer is not known yet (its discovery document has not been read, or names none)",
            })
            .to_string(),
        }),
    }
}

/// Starts the logout of a verified token, as every host glue does: the machine and its first two
/// calls aimed at the token's own provider, or at once the answer when logout is refused.
pub fn begin_logout(
    config: &FilterConfig,
    token: &str,
    verified: &VerifiedToken,
    already_revoked: bool,
    discovered: &DiscoveredEndpoints,
    now: u64,
) -> Result<(LogoutMachine, Vec<(Step, CalloutRequest)>), LogoutResponse> {
    let (logout, revocation) = logout_plan(config, verified.provider, discovered)?;
    let subject = LogoutSubject {
        token,
        sid: verified.sid.as_deref(),
        sub: verified.sub.as_deref(),
        already_revoked,
    };
    let (mut machine, mut calls) = LogoutMachine::start(logout, revocation, subject);
    if let Some(report) = hub_report(config, verified, now) {
        machine.results.push((Step::HubReport, None));
        calls.push((Step::HubReport, report));
    }
    Ok((machine, calls))
}

/// The report of a logout's cut-off to the revocation hub, for a provider the hub federates:
/// the same cut-off this gateway records ([`local_revocations`], at `now`).
fn hub_report(config: &FilterConfig, token: &VerifiedToken, now: u64) -> Option<CalloutRequest> {
    let hub = config
        .hub
        .as_ref()
        .filter(|h| h.federates(token.provider))?;
    let client = config.idp_client.as_ref()?;
    let provider = config.providers.get(token.provider)?;
    let body = match cutoff_of(token)? {
        (CutoffKind::Session, sid) => json!({"iss": provider.issuer, "sid": sid, "cutoff": now}),
        (CutoffKind::Subject, sub) => json!({"iss": provider.issuer, "sub": sub, "cutoff": now}),
    };
    Some(CalloutRequest::post(
        &hub.cutoffs,
        "application/json",
        Some(("authorization".into(), client.basic_authorization())),
        body.to_string().into_bytes(),
    ))
}

impl LogoutMachine {
    /// Starts a logout: the machine and the two requests to send, in [`Step`] order.
    pub fn start(
        config: &Logout,
        revocation: RevokeAt<'_>,
        subject: LogoutSubject<'_>,
    ) -> (LogoutMachine, Vec<(Step, CalloutRequest)>) {
        let revoke_body = format!(
            "token={}&token_type_hint=access_token",
            form_encode(subject.token)
        );
        let revoke = CalloutRequest::post(
            revocation.endpoint,
            FORM,
            Some((
                "authorization".into(),
                revocation.client.basic_authorization(),
            )),
            revoke_body.into_bytes(),
        );
        let session = CalloutRequest::post(
            &config.resource_server,
            "application/json",
            Some((
                config.resource_server_secret_header.clone(),
                config.resource_server_secret.0.clone(),
            )),
            json!({"sid": subject.sid, "sub": subject.sub})
                .to_string()
                .into_bytes(),
        );
        let machine = LogoutMachine {
            results: vec![(Step::IdpRevocation, None), (Step::SessionRevocation, None)],
            finished: false,
            already_revoked: subject.already_revoked,
        };
        (
            machine,
            vec![
                (Step::IdpRevocation, revoke),
                (Step::SessionRevocation, session),
            ],
        )
    }

    /// Feeds the result of one step. Returns the response once every step has answered — exactly
    /// once; later (duplicate) completions return `None` and change nothing.
    pub fn complete(&mut self, step: Step, result: CallResult) -> Option<LogoutResponse> {
        if self.finished {
            return None;
        }
        let slot = self.results.iter_mut().find(|(s, _)| *s == step)?;
        if slot.1.is_some() {
            return None; // a duplicate completion
        }
        slot.1 = Some(result);
        let results: Vec<(Step, CallResult)> = self
            .results
            .iter()
            .map(|(step, r)| r.map(|r| (*step, r)))
            .collect::<Option<_>>()?;
        self.finished = true;
        Some(self.response(&results))
    }

    fn result_of(&self, step: Step) -> Option<CallResult> {
        self.results.iter().find(|(s, _)| *s == step)?.1
    }

    /// Whether the IDP has confirmed the revocation (the gateway may then deny the token locally).
    pub fn idp_confirmed(&self) -> bool {
        self.result_of(Step::IdpRevocation)
            .is_some_and(CallResult::ok)
    }

    fn response(&self, results: &[(Step, CallResult)]) -> LogoutResponse {
        if results.iter().all(|(_, r)| r.ok()) {
            let idp = self.result_of(Step::IdpRevocation);
            let body = if idp == Some(CallResult::NotRevocable) {
                json!({"status": "logged_out", "message": NOT_REVOCABLE, "revocation": "gateway_cutoff"})
            } else if self.already_revoked {
                json!({"status": "logged_out", "message": "logout successful (the token was already revoked)"})
            } else {
                json!({"status": "logged_out", "message": "logout successful"})
            };
            return LogoutResponse {
                status: 200,
                body: body.to_string(),
            };
        }
        let failures: Vec<_> = results.iter().filter(|(_, r)| !r.ok()).collect();
        let status = if failures.iter().all(|(_, r)| *r == CallResult::TimedOut) {
            504
        } else {
            502
        };
        let failed: Vec<_> = failures
            .iter()
            .map(|(step, r)| {
                let why = match r {
                    CallResult::Status(s) => format!("answered HTTP {s}"),
                    CallResult::TimedOut => "timed out".to_owned(),
                    CallResult::Unreachable => "was unreachable".to_owned(),
                    CallResult::NotRevocable => "cannot revoke this token type".to_owned(),
                };
                json!({"step": step.name(), "error": why})
            })
            .collect();
        let body = json!({
            "status": "logout_failed",
            "message": "logout did not complete; the listed steps failed, retry the logout",
            "failed_steps": failed,
        });
        LogoutResponse {
            status,
            body: body.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
