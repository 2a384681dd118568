//! Registered-claim checks (RFC 7519 §4.1, RFC 9068 §4) on a payload whose signature already
//! verified. Missing is not malformed: a present `exp` that is not a number is refused as malformed,
//! never read as "no expiry".

use crate::http::denial::Denial;
use serde_json::{Map, Number, Value};

/// Reads a NumericDate claim: `Ok(None)` when absent, an error when present but not a
/// non-negative finite number. Fractions are truncated toward zero.
pub fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, Denial> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => date_of(n)
            .map(Some)
            .ok_or(Denial::Malformed("a date claim is out of range")),
        Some(_) => Err(Denial::Malformed("a date claim is not a number")),
    }
}

/// A JSON number as a NumericDate: non-negative and finite, fractions truncated toward zero.
pub fn date_of(n: &Number) -> Option<u64> {
    if let Some(v) = n.as_u64() {
        return Some(v);
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Some(f as u64),
        _ => None,
    }
}

pub fn optional_string<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, Denial> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Denial::Malformed("a string claim has another type")),
    }
}

/// The validity window of a token, checked against `now` with `leeway` seconds either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub exp: u64,
    pub nbf: Option<u64>,
    /// When the token was issued (RFC 7519 §4.1.6): a token issued in the future (beyond the
    /// leeway) is refused like one not yet valid.
    pub iat: Option<u64>,
}

impl Lifetime {
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Self, Denial> {
        let exp = numeric_date(claims, "exp")?.ok_or(Denial::Malformed("exp is required"))?;
        let nbf = numeric_date(claims, "nbf")?;
        let iat = numeric_date(claims, "iat")?; // present-but-garbage iat is refused too
        Ok(Lifetime { exp, nbf, iat })
    }

    pub fn check(&self, now: u64, leeway: u64) -> Result<(), Denial> {
        // RFC 7519 §4.1.4: the token must not be accepted on or after exp.
        if now >= self.exp.saturating_add(leeway) {
            return Err(Denial::Expired);
        }
        // Neither nbf nor iat may lie in the future beyond the leeway: a token issued "tomorrow"
        // is a forged clock or a broken issuer, never a valid token.
        let not_before = self.nbf.into_iter().chain(self.iat).max();
        if let Some(start) = not_before
            && now.saturating_add(leeway) < start
        {
            return Err(Denial::NotYetValid);
        }
        Ok(())
    }
}

/// `aud` may be a string or an array of strings (RFC 7519 §4.1.3); one must be accepted.
pub fn check_audience(claims: &Map<String, Value>, accepted: &[String]) -> Result<(), Denial> {
    let matches = |s: &str| accepted.iter().any(|a| a == s);
    match claims.get("aud") {
        Some(Value::String(s)) if matches(s) => Ok(()),
        Some(Value::Array(items)) => {
            let mut found = false;
            for item in items {
                match item {
                    Value::String(s) => found |= matches(s),
                    _ => return Err(Denial::Malformed("aud holds a non-string")),
                }
            }
            if found {
                Ok(())
            } else {
                Err(Denial::WrongAudience)
            }
        }
        Some(Value::String(_)) | None => Err(Denial::WrongAudience),
        Some(_) => Err(Denial::Malformed("aud is neither a string nor an array")),
    }
}

/// The token's scopes: the space-separated `scope` string (RFC 9068) and/or the `scp` array.
pub fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, Denial> {
    let mut out: Vec<String> = Vec::new();
    match claims.get("scope") {
        None => {}
        Some(Value::String(s)) => {
            out.extend(s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned))
        }
        Some(_) => return Err(Denial::Malformed("scope is not a string")),
    }
    match claims.get("scp") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    _ => return Err(Denial::Malformed("scp holds a non-string")),
                }
            }
        }
        Some(Value::String(s)) => {
            out.extend(s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned))
        }
        Some(_) => return Err(Denial::Malformed("scp is neither an array nor a string")),
    }
    // Unstable: equal strings are indistinguishable, and the stable sort is one more copy of
    // the merge sort in the Wasm module.
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn exp_is_required_and_must_be_a_number() {
        assert_eq!(
            Lifetime::from_claims(&obj(json!({}))),
            Err(Denial::Malformed("exp is required"))
        );
        for bad in [
            json!("1700000000"),
            json!(null),
            json!(-1),
            json!(true),
            json!([1]),
        ] {
            assert!(
                matches!(
                    Lifetime::from_claims(&obj(json!({"exp": bad}))),
                    Err(Denial::Malformed(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Lifetime::from_claims(&obj(json!({"exp": 10, "iat": "x"}))),
            Err(Denial::Malformed(_))
        ));
        assert_eq!(
            Lifetime::from_claims(&obj(json!({"exp": 10.9}))).map(|l| l.exp),
            Ok(10)
        );
    }

    #[test]
    fn lifetime_boundaries_with_leeway() {
        let l = Lifetime {
            exp: 100,
            nbf: Some(50),
            iat: None,
        };
        assert_eq!(l.check(99, 0), Ok(()));
        assert_eq!(l.check(100, 0), Err(Denial::Expired));
        assert_eq!(l.check(104, 5), Ok(()));
        assert_eq!(l.check(105, 5), Err(Denial::Expired));
        assert_eq!(l.check(49, 0), Err(Denial::NotYetValid));
        assert_eq!(l.check(45, 5), Ok(()));
        assert_eq!(l.check(50, 0), Ok(()));
    }

    #[test]
    fn iat_in_the_future_is_refused_beyond_the_leeway() {
        let l = Lifetime {
            exp: 1_000,
            nbf: None,
            iat: Some(500),
        };
        assert_eq!(l.check(499, 0), Err(Denial::NotYetValid));
        assert_eq!(l.check(500, 0), Ok(()));
        assert_eq!(l.check(470, 30), Ok(()));
        assert_eq!(l.check(469, 30), Err(Denial::NotYetValid));
        // the later of nbf and iat counts
        let both = Lifetime {
            exp: 1_000,
            nbf: Some(100),
            iat: Some(500),
        };
        assert_eq!(both.check(200, 0), Err(Denial::NotYetValid));
        assert_eq!(
            Lifetime::from_claims(&obj(json!({"exp": 10, "iat": 7}))).map(|l| l.iat),
            Ok(Some(7))
        );
    }

    #[test]
    fn audience_string_or_array() {
        let acc = vec!["api".to_string()];
        assert_eq!(check_audience(&obj(json!({"aud": "api"})), &acc), Ok(()));
        assert_eq!(
            check_audience(&obj(json!({"aud": ["x", "api"]})), &acc),
            Ok(())
        );
        assert_eq!(
            check_audience(&obj(json!({"aud": "x"})), &acc),
            Err(Denial::WrongAudience)
        );
        assert_eq!(
            check_audience(&obj(json!({})), &acc),
            Err(Denial::WrongAudience)
        );
        assert_eq!(
            check_audience(&obj(json!({"aud": []})), &acc),
            Err(Denial::WrongAudience)
        );
        assert!(matches!(
            check_audience(&obj(json!({"aud": ["api", 1]})), &acc),
            Err(Denial::Malformed(_))
        ));
    }

    #[test]
    fn scopes_from_scope_and_scp() {
        let s = scopes(&obj(
            json!({"scope": "read  write", "scp": ["admin", "read"]}),
        ))
        .unwrap();
        assert_eq!(s, vec!["admin", "read", "write"]);
        assert!(scopes(&obj(json!({"scope": 1}))).is_err());
    }
}
