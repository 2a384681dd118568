//! Security Event Tokens (RFC 8417) as SSF 1.0 §4 profiles them: `typ: secevent+jwt`, `iss`,
//! `aud` (the stream's), `iat`, `jti`, the subject in `sub_id` (RFC 9493), one event in
//! `events`; never `sub` or `exp` (RFC 8417 §2.2: a SET must not be mistaken for an ID or
//! access token). Signed with the IDP's active key, published in its JWKS.

use crate::oauth::keys::{KeyError, KeyRing};
use crate::oauth::tokens::{random_id, sign_typed};
use serde_json::{Value, json};

pub const SET_TYP: &str = "secevent+jwt";

/// CAEP 1.0 §3.1.
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// OAuth Event Types 1.0 (as Google's RISC and others send it).
pub const TOKEN_REVOKED: &str =
    "https://schemas.openid.net/secevent/oauth/event-type/token-revoked";
/// SSF 1.0 §8.1.4.
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
/// SSF 1.0 §8.1.5.
pub const STREAM_UPDATED: &str =
    "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";

/// The event types our streams can deliver (besides verification and stream-updated, which
/// every stream gets).
pub const EVENTS_SUPPORTED: [&str; 2] = [SESSION_REVOKED, TOKEN_REVOKED];

/// RFC 9493 `iss_sub`: a user of ours.
pub fn user_subject(issuer: &str, sub: &str) -> Value {
    json!({"format": "iss_sub", "iss": issuer, "sub": sub})
}

/// SSF 1.0 §3.3 `complex`: the session (`opaque`, its `sid`) of the user.
pub fn session_subject(issuer: &str, sid: &str, sub: &str) -> Value {
    json!({
        "format": "complex",
        "session": {"format": "opaque", "id": sid},
        "user": user_subject(issuer, sub),
    })
}

/// RFC 9493 `jwt_id`: one access token of ours by its `jti`.
pub fn token_subject(issuer: &str, jti: &str) -> Value {
    json!({"format": "jwt_id", "iss": issuer, "jti": jti})
}

/// A SET's claims, with a fresh `jti`.
pub fn claims(issuer: &str, aud: &str, iat: i64, sub_id: Value, event: &str, body: Value) -> Value {
    json!({
        "iss": issuer,
        "aud": aud,
        "iat": iat,
        "jti": random_id(),
        "sub_id": sub_id,
        "events": {event: body},
    })
}

/// CAEP `session-revoked` for the session `sid` of `sub`, ended at `at`.
pub fn session_revoked(issuer: &str, aud: &str, now: i64, sid: &str, sub: &str, at: i64) -> Value {
    claims(
        issuer,
        aud,
        now,
        session_subject(issuer, sid, sub),
        SESSION_REVOKED,
        json!({"event_timestamp": at}),
    )
}

/// OAuth `token-revoked` for the access token `jti`, revoked at `at`.
pub fn token_revoked(issuer: &str, aud: &str, now: i64, jti: &str, at: i64) -> Value {
    claims(
        issuer,
        aud,
        now,
        token_subject(issuer, jti),
        TOKEN_REVOKED,
        json!({"event_timestamp": at}),
    )
}

/// SSF `verification` for `stream_id`, echoing the receiver's `state` (if any).
pub fn verification(
    issuer: &str,
    aud: &str,
    now: i64,
    stream_id: &str,
    state: Option<&str>,
) -> Value {
    let body = match state {
        Some(s) => json!({"state": s}),
        None => json!({}),
    };
    claims(
        issuer,
        aud,
        now,
        json!({"format": "opaque", "id": stream_id}),
        VERIFICATION,
        body,
    )
}

/// SSF `stream-updated`: the stream's status changed.
pub fn stream_updated(
    issuer: &str,
    aud: &str,
    now: i64,
    stream_id: &str,
    status: &str,
    reason: Option<&str>,
) -> Value {
    let mut body = json!({"status": status});
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    claims(
        issuer,
        aud,
        now,
        json!({"format": "opaque", "id": stream_id}),
        STREAM_UPDATED,
        body,
    )
}

/// The claims' `jti` and the signed SET.
pub fn sign(keys: &KeyRing, claims: &Value) -> Result<(String, String), KeyError> {
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok((jti, sign_typed(keys, keys.active_alg, SET_TYP, claims)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_revoked_set_has_no_sub_nor_exp_and_a_complex_subject() {
        let c = session_revoked("https://idp", "rcv", 100, "s1", "u1", 99);
        assert!(c.get("sub").is_none() && c.get("exp").is_none());
        assert_eq!(c["sub_id"]["format"], "complex");
        assert_eq!(
            c["sub_id"]["session"],
            json!({"format": "opaque", "id": "s1"})
        );
        assert_eq!(c["sub_id"]["user"]["sub"], "u1");
        assert_eq!(c["events"][SESSION_REVOKED]["event_timestamp"], 99);
        assert_ne!(
            c["jti"],
            session_revoked("https://idp", "rcv", 100, "s1", "u1", 99)["jti"]
        );
    }
}
