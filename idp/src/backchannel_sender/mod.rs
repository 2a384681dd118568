//! The OpenID Connect Back-Channel Logout 1.0 sender: when a session of a client with a
//! registered `backchannel_logout_uri` ends, that client gets a logout token (§2.4), POSTed as
//! `logout_token=...` (§2.5) from the outbox in the background ([`crate::delivery`]): retried
//! with backoff, bounded, never holding up the logout that caused it.

use crate::oauth::keys::{KeyError, KeyRing};
use crate::oauth::tokens::{random_id, sign_typed};
use serde_json::{Value, json};

/// The header `typ` of logout tokens (§2.4, as the errata and RFC 8725 §3.11 recommend).
pub const LOGOUT_TYP: &str = "logout+jwt";
/// The one event of a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token's claims (§2.4): `iss`, `aud` (the client), `iat`, `exp` (errata set 1),
/// `jti`, `sub` and `sid`, the event; never `nonce`.
pub fn claims(issuer: &str, client_id: &str, sub: &str, sid: &str, now: i64, ttl: i64) -> Value {
    json!({
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + ttl,
        "jti": random_id(),
        "sub": sub,
        "sid": sid,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    })
}

/// The claims' `jti` and the signed logout token.
pub fn sign(keys: &KeyRing, claims: &Value) -> Result<(String, String), KeyError> {
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok((jti, sign_typed(keys, keys.active_alg, LOGOUT_TYP, claims)?))
}

/// The body POSTed to the RP (`application/x-www-form-urlencoded`).
pub fn form_body(token: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", token)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logout_token_names_the_session_and_has_no_nonce() {
        let c = claims("https://idp", "rp", "u1", "s1", 100, 120);
        assert_eq!(c["aud"], "rp");
        assert_eq!(c["exp"], 220);
        assert_eq!(c["sid"], "s1");
        assert!(c.get("nonce").is_none());
        assert_eq!(c["events"][BACKCHANNEL_LOGOUT_EVENT], json!({}));
        assert_eq!(form_body("a.b+c"), "logout_token=a.b%2Bc");
    }
}
