//! Validating one Security Event Token (RFC 8417) from a Shared Signals transmitter, as SSF 1.0
//! §4 profiles it: `typ` `secevent+jwt`, a signature by one of the transmitter's keys (RS256
//! with a modulus of at least 2048 bits, or ES256 on P-256; `none` and everything else refused),
//! `iss` exactly the transmitter's, `aud` naming the hub, `iat` within the window, a `jti`, an
//! `events` object, and neither `sub` nor `exp` (SSF 1.0 §4.1.8/§4.1.9). Cheap checks come
//! before the signature. Every refusal carries the RFC 8935 §2.4 error code the transmitter is
//! told (push `err`, poll `setErrs`). Time is a parameter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// The largest SET accepted (push body or one SET of a poll answer).
pub const MAX_SET_BYTES: usize = 32 * 1024;
/// The longest `jti` kept.
const MAX_JTI_BYTES: usize = 256;
/// The RSA modulus floor of the CAEP interoperability profile.
const MIN_RSA_BITS: usize = 2048;

/// Why a SET was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("the SET is larger than 32 KiB")]
    TooLarge,
    #[error("the SET is not a JWS in compact serialization")]
    Malformed,
    #[error("the SET's typ is not secevent+jwt")]
    WrongTyp,
    #[error("the SET's algorithm is not accepted (RS256 or ES256)")]
    Algorithm,
    #[error("the SET names no key of the transmitter")]
    UnknownKey,
    #[error("the SET's signature is invalid")]
    BadSignature,
    #[error("the SET's issuer is not the transmitter")]
    WrongIssuer,
    #[error("the SET's audience is not this receiver")]
    WrongAudience,
    #[error("the SET has no iat")]
    NoIat,
    #[error("the SET was issued too long ago")]
    Stale,
    #[error("the SET was issued in the future")]
    Future,
    #[error("the SET has no usable jti")]
    NoJti,
    #[error("the SET carries a sub claim (SSF uses sub_id)")]
    SubPresent,
    #[error("the SET carries an exp claim")]
    ExpPresent,
    #[error("the SET has no events object")]
    NoEvents,
    #[error("the SET's sub_id or subject is malformed")]
    MalformedSubject,
    #[error("an event of the SET is malformed")]
    MalformedEvent,
    #[error("the SET's jti was used by another SET")]
    JtiReused,
    #[error("the SET's jti is not the one it was delivered under")]
    JtiMismatch,
}

impl SetError {
    /// The RFC 8935 §2.4 / RFC 8936 error code.
    pub fn err(self) -> &'static str {
        match self {
            SetError::Algorithm | SetError::UnknownKey | SetError::BadSignature => "invalid_key",
            SetError::WrongIssuer => "invalid_issuer",
            SetError::WrongAudience => "invalid_audience",
            _ => "invalid_request",
        }
    }

    /// A metric label.
    pub fn name(self) -> &'static str {
        match self {
            SetError::TooLarge => "too_large",
            SetError::Malformed => "malformed",
            SetError::WrongTyp => "wrong_typ",
            SetError::Algorithm => "algorithm",
            SetError::UnknownKey => "unknown_key",
            SetError::BadSignature => "bad_signature",
            SetError::WrongIssuer => "wrong_issuer",
            SetError::WrongAudience => "wrong_audience",
            SetError::NoIat => "no_iat",
            SetError::Stale => "stale",
            SetError::Future => "future",
            SetError::NoJti => "no_jti",
            SetError::SubPresent => "sub_present",
            SetError::ExpPresent => "exp_present",
            SetError::NoEvents => "no_events",
            SetError::MalformedSubject => "malformed_subject",
            SetError::MalformedEvent => "malformed_event",
            SetError::JtiReused => "jti_reused",
            SetError::JtiMismatch => "jti_mismatch",
        }
    }
}

/// One usable key of the transmitter.
pub struct SetKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The transmitter's usable keys (RS256 ≥ 2048 bits, ES256 P-256); others are skipped.
#[derive(Default)]
pub struct SetKeys {
    keys: Vec<SetKey>,
}

impl SetKeys {
    /// Parses a JWKS document; `(keys, reasons a key was skipped)`. `None`: not a JWKS.
    pub fn parse(body: &[u8]) -> Option<(SetKeys, Vec<String>)> {
        let doc: Value = serde_json::from_slice(body).ok()?;
        let list = doc.get("keys")?.as_array()?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for raw in list {
            match usable_key(raw) {
                Ok(k) => keys.push(k),
                Err(why) => skipped.push(why),
            }
        }
        Some((SetKeys { keys }, skipped))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn candidates<'a>(
        &'a self,
        alg: Algorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a SetKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
    }
}

fn usable_key(raw: &Value) -> Result<SetKey, String> {
    let kid = raw.get("kid").and_then(Value::as_str).map(str::to_owned);
    let name = kid.clone().unwrap_or_else(|| "(no kid)".into());
    if raw
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| u != "sig")
    {
        return Err(format!("{name}: not a signing key"));
    }
    let jwk: Jwk =
        serde_json::from_value(raw.clone()).map_err(|e| format!("{name}: not a JWK ({e})"))?;
    let declared = raw.get("alg").and_then(Value::as_str);
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = URL_SAFE_NO_PAD
                .decode(rsa.n.trim_end_matches('='))
                .map_err(|_| format!("{name}: bad modulus"))?;
            let first = n.iter().position(|b| *b != 0).unwrap_or(n.len());
            let bits =
                (n.len() - first) * 8 - n.get(first).map_or(0, |b| b.leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err(format!("{name}: RSA key of {bits} bits (2048 at least)"));
            }
            Algorithm::RS256
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return Err(format!("{name}: neither an RSA nor a P-256 key")),
    };
    let expected = if alg == Algorithm::RS256 {
        "RS256"
    } else {
        "ES256"
    };
    if declared.is_some_and(|d| d != expected) {
        return Err(format!("{name}: declared for another algorithm"));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("{name}: {e}"))?;
    Ok(SetKey { kid, alg, key })
}

/// What a SET must say to be accepted from this stream.
pub struct SetPolicy<'a> {
    pub transmitter: &'a str,
    pub audience: &'a str,
    pub leeway_seconds: u64,
    pub max_age_seconds: u64,
}

/// A SET that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSet {
    pub jti: String,
    pub iat: i64,
    /// The top-level `sub_id` (RFC 9493), when present.
    pub sub_id: Option<Value>,
    /// Event type URI → its payload (an object).
    pub events: Map<String, Value>,
}

fn segment_json(segment: &str) -> Result<Map<String, Value>, SetError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| SetError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(SetError::Malformed),
    }
}

/// The header checks alone (no key needed): `(alg, kid)`.
fn check_header(token: &str) -> Result<(Algorithm, Option<String>), SetError> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SetError::Malformed);
    };
    let header = segment_json(h)?;
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    if !typ.eq_ignore_ascii_case("secevent+jwt") {
        return Err(SetError::WrongTyp);
    }
    if header.contains_key("crit") {
        return Err(SetError::Malformed);
    }
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => Algorithm::RS256,
        Some("ES256") => Algorithm::ES256,
        _ => return Err(SetError::Algorithm),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(SetError::Malformed),
    };
    Ok((alg, kid))
}

/// Validates `token` (the compact JWS) at `now` (Unix seconds).
pub fn validate(
    token: &str,
    keys: &SetKeys,
    policy: &SetPolicy<'_>,
    now: i64,
) -> Result<ValidSet, SetError> {
    if token.len() > MAX_SET_BYTES {
        return Err(SetError::TooLarge);
    }
    let token = token.trim();
    let (alg, kid) = check_header(token)?;
    let mut candidates = keys.candidates(alg, kid.as_deref()).peekable();
    if candidates.peek().is_none() {
        return Err(SetError::UnknownKey);
    }
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let claims = candidates
        .find_map(|k| jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, &validation).ok())
        .ok_or(SetError::BadSignature)?
        .claims;
    check_claims(claims, policy, now)
}

fn check_claims(
    mut claims: Map<String, Value>,
    policy: &SetPolicy<'_>,
    now: i64,
) -> Result<ValidSet, SetError> {
    if claims.get("iss").and_then(Value::as_str) != Some(policy.transmitter) {
        return Err(SetError::WrongIssuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == policy.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(policy.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(SetError::WrongAudience);
    }
    let iat = match claims.get("iat") {
        None => return Err(SetError::NoIat),
        Some(v) => v.as_i64().ok_or(SetError::NoIat)?,
    };
    let leeway = i64::try_from(policy.leeway_seconds).unwrap_or(i64::MAX);
    let max_age = i64::try_from(policy.max_age_seconds).unwrap_or(i64::MAX);
    if iat > now.saturating_add(leeway) {
        return Err(SetError::Future);
    }
    if iat < now.saturating_sub(max_age).saturating_sub(leeway) {
        return Err(SetError::Stale);
    }
    let jti = match claims.get("jti").and_then(Value::as_str) {
        Some(j) if !j.is_empty() && j.len() <= MAX_JTI_BYTES => j.to_owned(),
        _ => return Err(SetError::NoJti),
    };
    if claims.contains_key("sub") {
        return Err(SetError::SubPresent);
    }
    if claims.contains_key("exp") {
        return Err(SetError::ExpPresent);
    }
    let events = match claims.remove("events") {
        Some(Value::Object(events)) if !events.is_empty() => events,
        _ => return Err(SetError::NoEvents),
    };
    if events.values().any(|e| !e.is_object()) {
        return Err(SetError::MalformedEvent);
    }
    let sub_id = match claims.remove("sub_id") {
        None => None,
        Some(v @ Value::Object(_)) => Some(v),
        Some(_) => return Err(SetError::MalformedSubject),
    };
    Ok(ValidSet {
        jti,
        iat,
        sub_id,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> SetPolicy<'static> {
        SetPolicy {
            transmitter: "https://tx",
            audience: "https://hub",
            leeway_seconds: 30,
            max_age_seconds: 600,
        }
    }

    fn claims(change: Value) -> Map<String, Value> {
        let mut c = json!({"iss": "https://tx", "aud": ["x", "https://hub"], "iat": 1000,
            "jti": "j1", "events": {"https://e": {}}});
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c.as_object().unwrap().clone()
    }

    #[test]
    fn each_claim_rule_refuses_once() {
        assert!(check_claims(claims(json!({})), &policy(), 1000).is_ok());
        for (change, now, want) in [
            (json!({"iss": "https://other"}), 1000, SetError::WrongIssuer),
            (
                json!({"aud": "https://other"}),
                1000,
                SetError::WrongAudience,
            ),
            (json!({"aud": null}), 1000, SetError::WrongAudience),
            (json!({"iat": null}), 1000, SetError::NoIat),
            (json!({"iat": "1000"}), 1000, SetError::NoIat),
            (json!({}), 1000 - 31, SetError::Future),
            (json!({}), 1000 + 631, SetError::Stale),
            (json!({"jti": ""}), 1000, SetError::NoJti),
            (json!({"sub": "alice"}), 1000, SetError::SubPresent),
            (json!({"exp": 2000}), 1000, SetError::ExpPresent),
            (json!({"events": {}}), 1000, SetError::NoEvents),
            (
                json!({"events": {"https://e": 1}}),
                1000,
                SetError::MalformedEvent,
            ),
            (json!({"sub_id": "alice"}), 1000, SetError::MalformedSubject),
        ] {
            assert_eq!(
                check_claims(claims(change.clone()), &policy(), now),
                Err(want),
                "{change}"
            );
        }
    }

    #[test]
    fn headers_are_checked_before_any_key() {
        let seg = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let tok = |h: Value| format!("{}.{}.c2ln", seg(h), seg(json!({})));
        let keys = SetKeys::default();
        for (h, want) in [
            (json!({"alg": "ES256", "typ": "JWT"}), SetError::WrongTyp),
            (
                json!({"alg": "none", "typ": "secevent+jwt"}),
                SetError::Algorithm,
            ),
            (
                json!({"alg": "HS256", "typ": "secevent+jwt"}),
                SetError::Algorithm,
            ),
            (
                json!({"alg": "ES256", "typ": "secevent+jwt"}),
                SetError::UnknownKey,
            ),
            (
                json!({"alg": "ES256", "typ": "application/secevent+jwt", "kid": 5}),
                SetError::Malformed,
            ),
        ] {
            assert_eq!(
                validate(&tok(h.clone()), &keys, &policy(), 0),
                Err(want),
                "{h}"
            );
        }
        assert_eq!(
            validate("a.b", &keys, &policy(), 0),
            Err(SetError::Malformed)
        );
    }

    #[test]
    fn small_rsa_keys_and_other_curves_are_skipped() {
        let small = json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": URL_SAFE_NO_PAD.encode([0xffu8; 128]), "e": "AQAB"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "oct", "kid": "h", "k": "AAAA"}
        ]});
        let (keys, skipped) = SetKeys::parse(small.to_string().as_bytes()).unwrap();
        assert!(keys.is_empty());
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(skipped[0].contains("1024 bits"), "{skipped:?}");
    }
}
