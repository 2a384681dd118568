//! The logout sequence as a sans-IO state machine: the glue sends the two requests it is given,
//! feeds each answer (or its absence) back, and sends the one response the machine returns.
//!
//! 1. revoke the token at the IDP (RFC 7009, the gateway authenticating as a confidential client);
//! 2. tell the resource server to drop the session (`sid`, `sub`), with a shared secret header.
//!
//! Both calls go out at once; the answer waits for both, and is a success only when both
//! succeeded — otherwise it names every step that failed.
//!
//! The token is revoked at its own provider's endpoint, as the gateway's client there; a token
//! whose provider has no revocation endpoint is refused at once (400 `unsupported_token_type`,
//! RFC 7009 §2.2.1) and nothing is called: it is never sent to another provider.

use crate::config::FilterConfig;
use crate::config::services::{Logout, Revocation, form_encode};
use crate::request_path::normalise;
use crate::verified_token::VerifiedToken;
use serde_json::json;

/// A request for the glue to dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutRequest {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    IdpRevocation,
    SessionRevocation,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::IdpRevocation => "idp_revocation",
            Step::SessionRevocation => "resource_server_session_revocation",
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
}

impl CallResult {
    fn ok(self) -> bool {
        matches!(self, CallResult::Status(200..=299))
    }
}

/// The final answer to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    pub status: u32,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutMachine {
    idp: Option<CallResult>,
    session: Option<CallResult>,
    finished: bool,
    already_revoked: bool,
}

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

/// The logout configuration and the revocation endpoint of the token's provider (index
/// `provider` in configuration order); `Err` is the answer when logout is not possible for it.
pub fn logout_plan(
    config: &FilterConfig,
    provider: usize,
) -> Result<(&Logout, &Revocation), LogoutResponse> {
    let Some(logout) = &config.logout else {
        return Err(LogoutResponse {
            status: 404,
            body: String::new(),
        });
    };
    match config.providers.get(provider).and_then(|p| p.revocation.as_ref()) {
        Some(revocation) => Ok((logout, revocation)),
        None => Err(LogoutResponse {
            status: 400,
            body: json!({
                "status": "logout_refused",
                "error": "unsupported_token_type",
                "error_description": "logout cannot revoke tokens of this issuer: no revocation endpoint is configured for it",
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
) -> Result<(LogoutMachine, [(Step, CalloutRequest); 2]), LogoutResponse> {
    let (logout, revocation) = logout_plan(config, verified.provider)?;
    let subject = LogoutSubject {
        token,
        sid: verified.sid.as_deref(),
        sub: verified.sub.as_deref(),
        already_revoked,
    };
    Ok(LogoutMachine::start(logout, revocation, subject))
}

impl LogoutMachine {
    /// Starts a logout: the machine and the two requests to send, in [`Step`] order.
    pub fn start(
        config: &Logout,
        revocation: &Revocation,
        subject: LogoutSubject<'_>,
    ) -> (LogoutMachine, [(Step, CalloutRequest); 2]) {
        let revoke_body = format!(
            "token={}&token_type_hint=access_token",
            form_encode(subject.token)
        );
        let endpoint = &revocation.endpoint;
        let revoke = CalloutRequest {
            cluster: endpoint.cluster.clone(),
            headers: vec![
                (":method".into(), "POST".into()),
                (":path".into(), endpoint.path.clone()),
                (":authority".into(), endpoint.authority.clone()),
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                (
                    "authorization".into(),
                    revocation.client.basic_authorization(),
                ),
            ],
            body: revoke_body.into_bytes(),
            timeout_ms: endpoint.timeout_ms,
        };
        let rs = &config.resource_server;
        let session = CalloutRequest {
            cluster: rs.cluster.clone(),
            headers: vec![
                (":method".into(), "POST".into()),
                (":path".into(), rs.path.clone()),
                (":authority".into(), rs.authority.clone()),
                ("content-type".into(), "application/json".into()),
                (
                    config.resource_server_secret_header.clone(),
                    config.resource_server_secret.0.clone(),
                ),
            ],
            body: json!({"sid": subject.sid, "sub": subject.sub})
                .to_string()
                .into_bytes(),
            timeout_ms: rs.timeout_ms,
        };
        let machine = LogoutMachine {
            idp: None,
            session: None,
            finished: false,
            already_revoked: subject.already_revoked,
        };
        (
            machine,
            [
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
        let slot = match step {
            Step::IdpRevocation => &mut self.idp,
            Step::SessionRevocation => &mut self.session,
        };
        if slot.is_some() {
            return None; // a duplicate completion
        }
        *slot = Some(result);
        let (Some(idp), Some(session)) = (self.idp, self.session) else {
            return None;
        };
        self.finished = true;
        Some(self.response(idp, session))
    }

    /// Whether the IDP has confirmed the revocation (the gateway may then deny the token locally).
    pub fn idp_confirmed(&self) -> bool {
        self.idp.is_some_and(CallResult::ok)
    }

    fn response(&self, idp: CallResult, session: CallResult) -> LogoutResponse {
        if idp.ok() && session.ok() {
            let body = if self.already_revoked {
                json!({"status": "logged_out", "message": "logout successful (the token was already revoked)"})
            } else {
                json!({"status": "logged_out", "message": "logout successful"})
            };
            return LogoutResponse {
                status: 200,
                body: body.to_string(),
            };
        }
        let failures: Vec<_> = [
            (Step::IdpRevocation, idp),
            (Step::SessionRevocation, session),
        ]
        .into_iter()
        .filter(|(_, r)| !r.ok())
        .collect();
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
mod tests {
    use super::*;
    use crate::config::services::{Callout, IdpClient, Secret};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    fn config() -> (Logout, Revocation) {
        let callout = |cluster: &str, path: &str| Callout {
            cluster: cluster.into(),
            path: path.into(),
            authority: cluster.into(),
            timeout_ms: 1000,
        };
        (
            Logout {
                path: "/oauth2/logout".into(),
                resource_server: callout("rs", "/internal/sessions/revoke"),
                resource_server_secret_header: "x-gateway-secret".into(),
                resource_server_secret: Secret("s3cret-s3cret-s3cret".into()),
            },
            Revocation {
                endpoint: callout("idp", "/oauth2/revoke"),
                client: IdpClient {
                    client_id: "gateway".into(),
                    client_secret: Secret("pa ss:w+rd/0123456789".into()),
                },
            },
        )
    }

    fn start() -> (LogoutMachine, [(Step, CalloutRequest); 2]) {
        let (logout, revocation) = config();
        LogoutMachine::start(
            &logout,
            &revocation,
            LogoutSubject {
                token: "a.b.c",
                sid: Some("sid-1"),
                sub: Some("alice"),
                already_revoked: false,
            },
        )
    }

    #[test]
    fn builds_both_requests() {
        let (_, [(s1, idp), (s2, rs)]) = start();
        assert_eq!((s1, s2), (Step::IdpRevocation, Step::SessionRevocation));
        assert_eq!(idp.cluster, "idp");
        assert_eq!(idp.body, b"token=a.b.c&token_type_hint=access_token");
        let auth = idp
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1
            .clone();
        let decoded = STANDARD
            .decode(auth.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"gateway:pa+ss%3Aw%2Brd%2F0123456789");
        assert_eq!(rs.cluster, "rs");
        assert!(
            rs.headers
                .contains(&("x-gateway-secret".into(), "s3cret-s3cret-s3cret".into()))
        );
        let body: serde_json::Value = serde_json::from_slice(&rs.body).unwrap();
        assert_eq!(body, json!({"sid": "sid-1", "sub": "alice"}));
    }

    #[test]
    fn success_only_when_both_succeed_in_either_order() {
        for order in [
            [Step::IdpRevocation, Step::SessionRevocation],
            [Step::SessionRevocation, Step::IdpRevocation],
        ] {
            let (mut m, _) = start();
            assert_eq!(m.complete(order[0], CallResult::Status(200)), None);
            let r = m.complete(order[1], CallResult::Status(204)).unwrap();
            assert_eq!(r.status, 200);
            assert!(r.body.contains("logout successful"));
        }
    }

    #[test]
    fn a_failed_step_is_named_never_a_false_success() {
        let cases = [
            (
                CallResult::Status(500),
                CallResult::Status(200),
                502,
                vec!["idp_revocation"],
            ),
            (
                CallResult::Status(200),
                CallResult::Unreachable,
                502,
                vec!["resource_server_session_revocation"],
            ),
            (
                CallResult::TimedOut,
                CallResult::Status(200),
                504,
                vec!["idp_revocation"],
            ),
            (
                CallResult::TimedOut,
                CallResult::TimedOut,
                504,
                vec!["idp_revocation", "resource_server_session_revocation"],
            ),
            (
                CallResult::TimedOut,
                CallResult::Status(401),
                502,
                vec!["idp_revocation", "resource_server_session_revocation"],
            ),
        ];
        for (idp, rs, status, steps) in cases {
            for idp_first in [true, false] {
                let (mut m, _) = start();
                let r = if idp_first {
                    assert!(m.complete(Step::IdpRevocation, idp).is_none());
                    m.complete(Step::SessionRevocation, rs).unwrap()
                } else {
                    assert!(m.complete(Step::SessionRevocation, rs).is_none());
                    m.complete(Step::IdpRevocation, idp).unwrap()
                };
                assert_eq!(r.status, status, "{idp:?} {rs:?}");
                let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                let named: Vec<_> = body["failed_steps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["step"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(named, steps);
            }
        }
    }

    #[test]
    fn duplicate_completions_change_nothing() {
        let (mut m, _) = start();
        assert_eq!(
            m.complete(Step::IdpRevocation, CallResult::Status(200)),
            None
        );
        assert!(m.idp_confirmed());
        // a duplicate (e.g. a late timeout after the answer) is ignored
        assert_eq!(m.complete(Step::IdpRevocation, CallResult::TimedOut), None);
        assert!(m.idp_confirmed());
        let r = m
            .complete(Step::SessionRevocation, CallResult::Status(200))
            .unwrap();
        assert_eq!(r.status, 200);
        // after the answer, nothing more is produced
        assert_eq!(
            m.complete(Step::SessionRevocation, CallResult::Status(200)),
            None
        );
        assert_eq!(
            m.complete(Step::IdpRevocation, CallResult::Status(500)),
            None
        );
    }

    #[test]
    fn the_logout_path_is_recognised_as_rules_see_paths() {
        let json = serde_json::json!({
            "providers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
                           "jwks": {"cluster": "idp", "path": "/jwks"}}],
            "idp_client": {"client_id": "gw", "client_secret": "gateway-secret-0123456789"},
            "logout": {
                "revoke": {"cluster": "idp", "path": "/oauth2/revoke"},
                "resource_server": {"cluster": "rs", "path": "/internal/sessions/revoke",
                                    "secret_header": "x-gateway-secret", "secret": "s3cret-s3cret-s3cret"}
            }
        });
        let config = FilterConfig::from_json(json.to_string().as_bytes()).unwrap();
        for path in [
            "/oauth2/logout",
            "/oauth2/logout?x=1",
            "//oauth2/logout",
            "/a/../oauth2/logout",
        ] {
            assert!(is_logout_path(&config, path), "{path}");
        }
        for path in [
            "/oauth2/logout/x",
            "/oauth2%2Flogout",
            "/api",
            "oauth2/logout",
        ] {
            assert!(!is_logout_path(&config, path), "{path}");
        }
        let mut without = config.clone();
        without.logout = None;
        assert!(!is_logout_path(&without, "/oauth2/logout"));
    }
}
