//! What a validated SET does: each event of it becomes effects on the revocation feed — a
//! session (`sid`) cut-off, a subject cut-off, or a federated access token's `jti` refused — or
//! a stream notice (verification, stream-updated), or is acknowledged and ignored (unknown
//! events, events switched off, subjects that name no token). Pure: the stream's settings, the
//! SET and the time in, effects out.
//!
//! The cut-off time is the event's `event_timestamp` (CAEP 1.0 §2; a value of 10^12 or more is
//! read as milliseconds, as some transmitters' examples write it), else the SET's `iat`, and
//! never later than now.

use super::set::{SetError, ValidSet};
use super::subject::{self, Subject};
use crate::settings::{EventAction, SsfStream};
use crate::store::CutoffKey;
use serde_json::Value;

pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
pub const STREAM_UPDATED: &str =
    "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const TOKEN_CLAIMS_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
const TOKEN_REVOKED: &str = "https://schemas.openid.net/secevent/oauth/event-type/token-revoked";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Tokens of `iss` with this session or subject issued at or before `at` are refused.
    Cutoff {
        iss: String,
        key: CutoffKey,
        value: String,
        at: i64,
    },
    /// The access token `jti` of `iss` is refused.
    DenyJti {
        iss: String,
        jti: String,
    },
    Verification {
        state: Option<String>,
    },
    StreamUpdated {
        status: String,
        reason: Option<String>,
    },
    /// Acknowledged, counted under this name, nothing applied.
    Ignored(&'static str),
}

/// What the subject of an event names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// One session (CAEP session-revoked): an opaque subject is a session id.
    Session,
    /// One token (token-claims-change, token-revoked): only a `jwt_id` names one.
    Token,
    /// A user and everything of theirs: an opaque subject is a `sub`.
    User,
}

fn scope(event_type: &str) -> Scope {
    match event_type {
        SESSION_REVOKED => Scope::Session,
        TOKEN_CLAIMS_CHANGE | TOKEN_REVOKED => Scope::Token,
        _ => Scope::User,
    }
}

/// The effects of every event of `set`.
pub fn plan(stream: &SsfStream, set: &ValidSet, now: i64) -> Result<Vec<Effect>, SetError> {
    let top = set
        .sub_id
        .as_ref()
        .map(subject::parse)
        .transpose()
        .map_err(|_| SetError::MalformedSubject)?;
    let mut effects = Vec::new();
    for (event_type, payload) in &set.events {
        match event_type.as_str() {
            VERIFICATION => effects.push(Effect::Verification {
                state: text(payload, "state")?,
            }),
            STREAM_UPDATED => effects.push(Effect::StreamUpdated {
                status: text(payload, "status")?.ok_or(SetError::MalformedEvent)?,
                reason: text(payload, "reason")?,
            }),
            _ => match stream.action(event_type) {
                None => effects.push(Effect::Ignored("unknown_event")),
                Some(EventAction::Ignore) => effects.push(Effect::Ignored("ignored_event")),
                Some(EventAction::Cutoff) => {
                    let subject = match (&top, payload.get("subject")) {
                        (Some(s), _) => s.clone(),
                        (None, Some(legacy)) => {
                            subject::parse(legacy).map_err(|_| SetError::MalformedSubject)?
                        }
                        (None, None) => return Err(SetError::MalformedSubject),
                    };
                    let at = event_time(payload)?.unwrap_or(set.iat).min(now);
                    map_subject(stream, scope(event_type), &subject, at, &mut effects);
                }
            },
        }
    }
    Ok(effects)
}

fn text(payload: &Value, name: &str) -> Result<Option<String>, SetError> {
    match payload.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() <= 1024 => Ok(Some(s.clone())),
        Some(_) => Err(SetError::MalformedEvent),
    }
}

fn event_time(payload: &Value) -> Result<Option<i64>, SetError> {
    let Some(v) = payload.get("event_timestamp") else {
        return Ok(None);
    };
    let t = v
        .as_i64()
        .filter(|t| *t >= 0)
        .ok_or(SetError::MalformedEvent)?;
    Ok(Some(if t >= 1_000_000_000_000 { t / 1000 } else { t }))
}

fn federated<'a>(stream: &'a SsfStream, iss: &str) -> Option<&'a String> {
    stream.issuers.iter().find(|i| *i == iss)
}

fn each_issuer(stream: &SsfStream, key: CutoffKey, value: &str, at: i64, out: &mut Vec<Effect>) {
    for iss in &stream.issuers {
        out.push(Effect::Cutoff {
            iss: iss.clone(),
            key,
            value: value.to_owned(),
            at,
        });
    }
}

fn map_subject(stream: &SsfStream, scope: Scope, s: &Subject, at: i64, out: &mut Vec<Effect>) {
    match s {
        Subject::JwtId { iss, jti } => match federated(stream, iss) {
            Some(iss) => out.push(Effect::DenyJti {
                iss: iss.clone(),
                jti: jti.clone(),
            }),
            None => out.push(Effect::Ignored("issuer_not_federated")),
        },
        _ if scope == Scope::Token => out.push(Effect::Ignored("subject_not_mapped")),
        Subject::IssSub { iss, sub } => match federated(stream, iss) {
            Some(iss) => out.push(Effect::Cutoff {
                iss: iss.clone(),
                key: CutoffKey::Sub,
                value: sub.clone(),
                at,
            }),
            None => out.push(Effect::Ignored("issuer_not_federated")),
        },
        Subject::Email(email) if stream.email_is_sub => {
            each_issuer(stream, CutoffKey::Sub, email, at, out);
        }
        Subject::Email(_) => out.push(Effect::Ignored("email_not_mapped")),
        Subject::Opaque(id) => {
            let key = if scope == Scope::Session {
                CutoffKey::Sid
            } else {
                CutoffKey::Sub
            };
            each_issuer(stream, key, id, at, out);
        }
        Subject::Complex { session, user } => {
            let session_id = match session.as_deref() {
                Some(Subject::Opaque(id)) => Some(id),
                _ => None,
            };
            match (scope, session_id, user) {
                (Scope::Session, Some(sid), user) | (_, Some(sid), user @ None) => {
                    // the user's issuer, when it names one we federate, else every issuer
                    let iss = match user.as_deref() {
                        Some(Subject::IssSub { iss, .. }) => federated(stream, iss),
                        _ => None,
                    };
                    match iss {
                        Some(iss) => out.push(Effect::Cutoff {
                            iss: iss.clone(),
                            key: CutoffKey::Sid,
                            value: sid.clone(),
                            at,
                        }),
                        None => each_issuer(stream, CutoffKey::Sid, sid, at, out),
                    }
                }
                (_, _, Some(user)) => map_subject(stream, Scope::User, user, at, out),
                (_, None, None) => out.push(Effect::Ignored("subject_not_mapped")),
            }
        }
        Subject::Other => out.push(Effect::Ignored("subject_not_mapped")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RawSettings;
    use serde_json::{Map, json};

    fn stream(email_is_sub: bool) -> SsfStream {
        let toml = format!(
            r#"
[[federation.issuers]]
issuer = "https://op"
jwks_uri = "https://op/jwks"
max_token_lifetime_seconds = 600
[[federation.ssf_streams]]
name = "s"
transmitter = "https://tx"
audience = "https://hub"
issuers = ["https://op"]
delivery = "poll"
email_is_sub = {email_is_sub}
auth = {{ bearer = "b" }}
actions = {{ credential-change = "ignore" }}
"#
        );
        let settings = RawSettings::from_toml(&toml)
            .unwrap()
            .validate(&Default::default())
            .unwrap();
        settings.federation.ssf_streams[0].clone()
    }

    fn set(sub_id: Option<Value>, events: Value) -> ValidSet {
        let events: Map<String, Value> = events.as_object().unwrap().clone();
        ValidSet {
            jti: "j".into(),
            iat: 900,
            sub_id,
            events,
        }
    }

    fn cut(key: CutoffKey, value: &str, at: i64) -> Effect {
        Effect::Cutoff {
            iss: "https://op".into(),
            key,
            value: value.into(),
            at,
        }
    }

    #[test]
    fn session_revoked_cuts_the_session_or_the_user_at_the_event_time() {
        let s = stream(false);
        let complex = json!({"format": "complex",
            "session": {"format": "opaque", "id": "s1"},
            "user": {"format": "iss_sub", "iss": "https://op", "sub": "u1"}});
        let ev = json!({SESSION_REVOKED: {"event_timestamp": 800}});
        assert_eq!(
            plan(&s, &set(Some(complex), ev.clone()), 1000),
            Ok(vec![cut(CutoffKey::Sid, "s1", 800)])
        );
        let user = json!({"format": "iss_sub", "iss": "https://op", "sub": "u1"});
        assert_eq!(
            plan(&s, &set(Some(user), json!({SESSION_REVOKED: {}})), 1000),
            Ok(vec![cut(CutoffKey::Sub, "u1", 900)])
        );
        // milliseconds, and a time in the future is now
        let opaque = json!({"format": "opaque", "id": "s2"});
        let ms = json!({SESSION_REVOKED: {"event_timestamp": 1_615_304_991_643_i64}});
        assert_eq!(
            plan(&s, &set(Some(opaque.clone()), ms), 2_000_000_000),
            Ok(vec![cut(CutoffKey::Sid, "s2", 1_615_304_991)])
        );
        let future = json!({SESSION_REVOKED: {"event_timestamp": 5000}});
        assert_eq!(
            plan(&s, &set(Some(opaque), future), 1000),
            Ok(vec![cut(CutoffKey::Sid, "s2", 1000)])
        );
        // the legacy per-event subject
        let legacy = json!({SESSION_REVOKED: {"subject": {"format": "opaque", "id": "s3"}}});
        assert_eq!(
            plan(&s, &set(None, legacy), 1000),
            Ok(vec![cut(CutoffKey::Sid, "s3", 900)])
        );
    }

    #[test]
    fn tokens_users_emails_unknown_and_ignored_events() {
        let s = stream(false);
        let jwt = json!({"format": "jwt_id", "iss": "https://op", "jti": "t1"});
        assert_eq!(
            plan(&s, &set(Some(jwt), json!({TOKEN_CLAIMS_CHANGE: {}})), 1000),
            Ok(vec![Effect::DenyJti {
                iss: "https://op".into(),
                jti: "t1".into()
            }])
        );
        let email = json!({"format": "email", "email": "a@b"});
        let disabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
        assert_eq!(
            plan(&s, &set(Some(email.clone()), json!({disabled: {}})), 1000),
            Ok(vec![Effect::Ignored("email_not_mapped")])
        );
        assert_eq!(
            plan(
                &stream(true),
                &set(Some(email), json!({disabled: {}})),
                1000
            ),
            Ok(vec![cut(CutoffKey::Sub, "a@b", 900)])
        );
        let other = json!({"format": "iss_sub", "iss": "https://elsewhere", "sub": "u"});
        assert_eq!(
            plan(&s, &set(Some(other), json!({disabled: {}})), 1000),
            Ok(vec![Effect::Ignored("issuer_not_federated")])
        );
        let user = json!({"format": "iss_sub", "iss": "https://op", "sub": "u1"});
        let change = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
        assert_eq!(
            plan(
                &s,
                &set(Some(user.clone()), json!({change: {}, "https://x/new": {}})),
                1000
            ),
            Ok(vec![
                Effect::Ignored("ignored_event"),
                Effect::Ignored("unknown_event")
            ])
        );
        assert_eq!(
            plan(&s, &set(None, json!({SESSION_REVOKED: {}})), 1000),
            Err(SetError::MalformedSubject)
        );
        assert_eq!(
            plan(
                &s,
                &set(Some(json!({"format": 1})), json!({"https://x": {}})),
                1000
            ),
            Err(SetError::MalformedSubject)
        );
        assert_eq!(
            plan(
                &s,
                &set(
                    Some(user),
                    json!({SESSION_REVOKED: {"event_timestamp": "soon"}})
                ),
                1000
            ),
            Err(SetError::MalformedEvent)
        );
    }
}
