//! OpenID Connect Back-Channel Logout 1.0 (with errata 1): the logout token a provider POSTs to a
//! relying party's `backchannel_logout_uri`, validated as §2.6 says. Pure: no host types, time is
//! a parameter. The `jti` replay check (§2.6 step 7) needs state, so it is the caller's, after
//! this validation succeeded ([`LogoutTokenError::Replayed`] is its error).
//!
//! Order: the cheap checks first (size, compact form, `alg`, `typ`, `iss`), then the signature,
//! then the claims — a flood of bogus tokens costs one parse each, not one signature check each.

use crate::http::denial::Denial;
use crate::jose::algorithm::Algorithm;
use crate::jose::jwk::KeySet;
use crate::jose::jws;
use crate::jose::signature::{NativeVerifier, verify_jwk};
use crate::validation::claims::{check_audience, numeric_date, optional_string};
use serde_json::{Map, Value};

/// The member of `events` that makes a JWT a logout token (BCL §2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The largest logout token accepted (bytes). Real ones are well under 2 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The largest form body [`logout_token_from_form`] reads (the token, percent-encoded at worst).
pub const MAX_FORM_BYTES: usize = 3 * MAX_TOKEN_BYTES + 1024;

/// What a logout token must satisfy for one provider.
#[derive(Debug, Clone, Copy)]
pub struct LogoutTokenPolicy<'a> {
    /// The provider's issuer: `iss` must equal it exactly.
    pub issuer: &'a str,
    /// Client ids at that provider: `aud` must contain one.
    pub audiences: &'a [String],
    /// The algorithm allow-list (`none` and HMAC can never be in it).
    pub algorithms: &'a [Algorithm],
    pub leeway_seconds: u64,
    /// A token whose `iat` is older than `now - max_age_seconds` (minus the leeway) is refused.
    pub max_age_seconds: u64,
}

/// A validated logout: end the sessions `sid` (or, without it, every session of `sub`) of
/// `issuer` started at or before `iat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutEvent {
    pub issuer: String,
    pub sid: Option<String>,
    pub sub: Option<String>,
    pub iat: u64,
    pub exp: Option<u64>,
    pub jti: String,
}

/// Why a logout token (or the request carrying it) was refused: one variant per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    #[error("the request body is not a form with one logout_token")]
    BadForm,
    #[error("no logout_token parameter")]
    MissingToken,
    #[error("more than one logout_token parameter")]
    RepeatedToken,
    #[error("the logout token is too large")]
    TooLarge,
    #[error("the logout token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the logout token's algorithm is not accepted")]
    UnsupportedAlgorithm,
    #[error("the logout token's typ is not logout+jwt")]
    WrongType,
    #[error("the logout token's issuer is not accepted")]
    WrongIssuer,
    #[error("no keys for the logout token's issuer")]
    NoKeys,
    #[error("no key for the logout token's kid and alg")]
    UnknownKey,
    #[error("the logout token's signature is invalid")]
    BadSignature,
    #[error("the logout token's audience is not accepted")]
    WrongAudience,
    #[error("the logout token has no iat")]
    MissingIssuedAt,
    #[error("the logout token was issued too long ago")]
    Stale,
    #[error("the logout token was issued in the future")]
    IssuedInFuture,
    #[error("the logout token has expired")]
    Expired,
    #[error("the logout token has no jti")]
    MissingJti,
    #[error("the logout token has no back-channel logout event")]
    MissingEvent,
    #[error("the logout token carries a nonce")]
    NoncePresent,
    #[error("the logout token has neither sid nor sub")]
    MissingSubject,
    #[error("the logout token was received before")]
    Replayed,
}

impl LogoutTokenError {
    /// The `error_description` of the 400 answer (BCL §2.8): says which rule, never echoes input.
    pub fn description(&self) -> &'static str {
        match self {
            Self::BadForm => "the request body is not a form with one logout_token",
            Self::MissingToken => "no logout_token parameter",
            Self::RepeatedToken => "more than one logout_token parameter",
            Self::TooLarge => "the logout token is too large",
            Self::Malformed(why) => why,
            Self::UnsupportedAlgorithm => "the logout token's algorithm is not accepted",
            Self::WrongType => "the logout token's typ is not logout+jwt",
            Self::WrongIssuer => "the logout token's issuer is not accepted",
            Self::NoKeys => "no keys for the logout token's issuer",
            Self::UnknownKey => "no key for the logout token's kid and alg",
            Self::BadSignature => "the logout token's signature is invalid",
            Self::WrongAudience => "the logout token's audience is not accepted",
            Self::MissingIssuedAt => "the logout token has no iat",
            Self::Stale => "the logout token was issued too long ago",
            Self::IssuedInFuture => "the logout token was issued in the future",
            Self::Expired => "the logout token has expired",
            Self::MissingJti => "the logout token has no jti",
            Self::MissingEvent => "the logout token has no back-channel logout event",
            Self::NoncePresent => "the logout token carries a nonce",
            Self::MissingSubject => "the logout token has neither sid nor sub",
            Self::Replayed => "the logout token was received before",
        }
    }

    /// A short stable name, for metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BadForm => "bad_form",
            Self::MissingToken => "missing_token",
            Self::RepeatedToken => "repeated_token",
            Self::TooLarge => "too_large",
            Self::Malformed(_) => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::WrongType => "wrong_type",
            Self::WrongIssuer => "wrong_issuer",
            Self::NoKeys => "no_keys",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::WrongAudience => "wrong_audience",
            Self::MissingIssuedAt => "missing_iat",
            Self::Stale => "stale",
            Self::IssuedInFuture => "issued_in_future",
            Self::Expired => "expired",
            Self::MissingJti => "missing_jti",
            Self::MissingEvent => "missing_event",
            Self::NoncePresent => "nonce_present",
            Self::MissingSubject => "missing_subject",
            Self::Replayed => "replayed",
        }
    }
}

/// A claim-reading failure of the shared claim helpers, as a logout-token error.
fn from_denial(d: Denial) -> LogoutTokenError {
    match d {
        Denial::UnsupportedAlgorithm => LogoutTokenError::UnsupportedAlgorithm,
        Denial::WrongAudience => LogoutTokenError::WrongAudience,
        Denial::Malformed(why) => LogoutTokenError::Malformed(why),
        _ => LogoutTokenError::Malformed("the logout token is not a valid JWS"),
    }
}

/// Validates a logout token for one provider (BCL §2.6). `now` is seconds since the Unix epoch.
pub fn validate_logout_token(
    policy: &LogoutTokenPolicy<'_>,
    keys: &KeySet,
    token: &str,
    now: u64,
    native: Option<&dyn NativeVerifier>,
) -> Result<LogoutEvent, LogoutTokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(LogoutTokenError::TooLarge);
    }
    // Step 1 (decryption) does not apply: an encrypted token has five segments and is refused.
    let jws = jws::parse(token).map_err(from_denial)?;
    if !policy.algorithms.contains(&jws.header.alg) {
        return Err(LogoutTokenError::UnsupportedAlgorithm);
    }
    if let Some(typ) = jws.header.typ.as_deref()
        && !is_logout_type(typ)
    {
        return Err(LogoutTokenError::WrongType);
    }
    let claims = &jws.claims;
    // Read before the signature only to refuse cheaply; the signature authenticates it.
    let iss = optional_string(claims, "iss").map_err(from_denial)?;
    if iss != Some(policy.issuer) {
        return Err(LogoutTokenError::WrongIssuer);
    }
    // Step 2: the signature, by a key of the provider's set for the token's kid and alg.
    if keys.is_empty() {
        return Err(LogoutTokenError::NoKeys);
    }
    let mut candidates = keys
        .candidates(jws.header.kid.as_deref(), jws.header.alg)
        .peekable();
    if candidates.peek().is_none() {
        return Err(LogoutTokenError::UnknownKey);
    }
    let message = jws.signing_input.as_bytes();
    if !candidates.any(|k| verify_jwk(native, jws.header.alg, k, message, &jws.signature)) {
        return Err(LogoutTokenError::BadSignature);
    }
    // Step 3: aud, iat, exp as for an ID token.
    check_audience(claims, policy.audiences).map_err(from_denial)?;
    let iat = numeric_date(claims, "iat")
        .map_err(from_denial)?
        .ok_or(LogoutTokenError::MissingIssuedAt)?;
    let oldest = now
        .saturating_sub(policy.max_age_seconds)
        .saturating_sub(policy.leeway_seconds);
    if iat < oldest {
        return Err(LogoutTokenError::Stale);
    }
    if iat > now.saturating_add(policy.leeway_seconds) {
        return Err(LogoutTokenError::IssuedInFuture);
    }
    let exp = numeric_date(claims, "exp").map_err(from_denial)?;
    if exp.is_some_and(|exp| now >= exp.saturating_add(policy.leeway_seconds)) {
        return Err(LogoutTokenError::Expired);
    }
    let jti = match optional_string(claims, "jti").map_err(from_denial)? {
        Some(jti) if !jti.is_empty() => jti.to_owned(),
        _ => return Err(LogoutTokenError::MissingJti),
    };
    // Step 5: the back-channel logout event, its value a JSON object.
    check_events(claims)?;
    // Step 6: no nonce (a logout token must never pass for an ID token, nor one for it).
    if claims.contains_key("nonce") {
        return Err(LogoutTokenError::NoncePresent);
    }
    // Step 4: sid, sub or both.
    let sid = optional_string(claims, "sid").map_err(from_denial)?;
    let sub = optional_string(claims, "sub").map_err(from_denial)?;
    if sid.is_none_or(str::is_empty) && sub.is_none_or(str::is_empty) {
        return Err(LogoutTokenError::MissingSubject);
    }
    Ok(LogoutEvent {
        issuer: policy.issuer.to_owned(),
        sid: sid.filter(|s| !s.is_empty()).map(str::to_owned),
        sub: sub.filter(|s| !s.is_empty()).map(str::to_owned),
        iat,
        exp,
        jti,
    })
}

/// `logout+jwt` (BCL §2.4), or its full media type, compared without regard to case (RFC 7515
/// §4.1.9).
fn is_logout_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("logout+jwt") || typ.eq_ignore_ascii_case("application/logout+jwt")
}

fn check_events(claims: &Map<String, Value>) -> Result<(), LogoutTokenError> {
    match claims.get("events") {
        Some(Value::Object(events)) => match events.get(EVENT) {
            Some(Value::Object(_)) => Ok(()),
            Some(_) => Err(LogoutTokenError::Malformed(
                "the back-channel logout event is not a JSON object",
            )),
            None => Err(LogoutTokenError::MissingEvent),
        },
        None => Err(LogoutTokenError::MissingEvent),
        Some(_) => Err(LogoutTokenError::Malformed("events is not a JSON object")),
    }
}

/// The issuer a token names, unverified: only to choose whose keys and policy to validate it
/// with. `None` for anything that is not a compact JWS with a string `iss`.
pub fn unverified_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let segments = jws::split(token).ok()?;
    let claims = jws::parse_claims(segments.payload).ok()?;
    match claims.get("iss") {
        Some(Value::String(iss)) => Some(iss.clone()),
        _ => None,
    }
}

/// The `logout_token` of an `application/x-www-form-urlencoded` body (BCL §2.5): exactly one,
/// non-empty. Percent-escapes must be well formed and the decoded text UTF-8; `+` is a space.
/// Other parameters are ignored.
pub fn logout_token_from_form(body: &[u8]) -> Result<String, LogoutTokenError> {
    if body.len() > MAX_FORM_BYTES {
        return Err(LogoutTokenError::TooLarge);
    }
    let mut token = None;
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if form_decode(name)? != "logout_token" {
            continue;
        }
        if token.is_some() {
            return Err(LogoutTokenError::RepeatedToken);
        }
        token = Some(form_decode(value)?);
    }
    match token {
        Some(t) if t.is_empty() => Err(LogoutTokenError::MissingToken),
        Some(t) if t.len() > MAX_TOKEN_BYTES => Err(LogoutTokenError::TooLarge),
        Some(t) => Ok(t),
        None => Err(LogoutTokenError::MissingToken),
    }
}

/// One form name or value (WHATWG URL, application/x-www-form-urlencoded parsing), strictly: a
/// `%` not followed by two hex digits, or bytes that are not UTF-8 after decoding, are errors.
fn form_decode(raw: &[u8]) -> Result<String, LogoutTokenError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).and_then(|&h| hex(h));
                let lo = raw.get(i + 2).and_then(|&l| hex(l));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(LogoutTokenError::BadForm);
                };
                out.push(hi << 4 | lo);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| LogoutTokenError::BadForm)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The body of a 400 answer (BCL §2.8): `{"error":"invalid_request","error_description":…}`.
pub fn error_body(e: LogoutTokenError) -> String {
    serde_json::json!({"error": "invalid_request", "error_description": e.description()})
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_with_one_token_decodes_escapes_and_plus() {
        assert_eq!(
            logout_token_from_form(b"logout_token=a.b%2Ec+d"),
            Ok("a.b.c d".to_owned())
        );
        assert_eq!(
            logout_token_from_form(b"x=1&&logout%5Ftoken=abc&y"),
            Ok("abc".to_owned())
        );
    }

    #[test]
    fn form_errors() {
        use LogoutTokenError::*;
        for (body, want) in [
            (&b""[..], MissingToken),
            (b"logout_token=", MissingToken),
            (b"logout_token", MissingToken),
            (b"other=1", MissingToken),
            (b"logout_token=a&logout_token=a", RepeatedToken),
            (b"logout_token=a&logout%5ftoken=b", RepeatedToken),
            (b"logout_token=a%2", BadForm),
            (b"logout_token=a%zz", BadForm),
            (b"logout_token=%ff%fe", BadForm),
            (b"logout_token=\xff", BadForm),
        ] {
            assert_eq!(logout_token_from_form(body), Err(want), "{body:?}");
        }
        let big = format!("logout_token={}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(logout_token_from_form(big.as_bytes()), Err(TooLarge));
        let huge = vec![b'a'; MAX_FORM_BYTES + 1];
        assert_eq!(logout_token_from_form(&huge), Err(TooLarge));
    }

    #[test]
    fn error_body_is_an_rfc_6749_error() {
        let body: Value =
            serde_json::from_str(&error_body(LogoutTokenError::NoncePresent)).unwrap_or_default();
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(
            body["error_description"],
            "the logout token carries a nonce"
        );
    }

    #[test]
    fn logout_types() {
        for ok in ["logout+jwt", "Logout+JWT", "application/logout+jwt"] {
            assert!(is_logout_type(ok), "{ok}");
        }
        for bad in ["JWT", "at+jwt", "logout+jwt ", ""] {
            assert!(!is_logout_type(bad), "{bad}");
        }
    }
}
