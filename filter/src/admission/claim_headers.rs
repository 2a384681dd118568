//! Copying verified claims into upstream request headers (`x-auth-sub`, …). The same names are
//! always removed from the inbound request first, so a client cannot forge them.

use crate::validation::verified_token::VerifiedToken;
use serde_json::Value;

/// The headers to set for `token`: `(header, value)` for every mapped claim present as a string,
/// number, boolean or array of those (joined by `separator`). `scope` is always space-separated,
/// as in the token. Values with control characters are skipped rather than sent.
pub fn claim_headers(
    token: &VerifiedToken,
    mapping: &[(String, String)],
    separator: &str,
) -> Vec<(String, String)> {
    mapping
        .iter()
        .filter_map(|(header, claim)| {
            let value = if claim == "scope" {
                Some(token.scopes.join(" ")).filter(|s| !s.is_empty())
            } else {
                token.claims.get(claim).and_then(|v| render(v, separator))
            }?;
            if value.chars().any(char::is_control) {
                return None;
            }
            Some((header.clone(), value))
        })
        .collect()
}

fn render(value: &Value, separator: &str) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|v| match v {
                    Value::Array(_) | Value::Object(_) | Value::Null => None,
                    v => render(v, separator),
                })
                .collect();
            parts.filter(|p| !p.is_empty()).map(|p| p.join(separator))
        }
        Value::Null | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::claims::Lifetime;
    use serde_json::json;

    fn token(claims: Value) -> VerifiedToken {
        let claims = claims.as_object().cloned().unwrap();
        VerifiedToken {
            ids: Default::default(),
            recheck_after: None,
            claim_headers: Vec::new(),
            provider: 0,
            lifetime: Lifetime {
                exp: 10,
                nbf: None,
                iat: None,
            },
            jti: None,
            sid: None,
            sub: None,
            scopes: vec!["read".into(), "write".into()],
            jkt: None,
            ath: None,
            claims,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn renders_strings_numbers_arrays_and_scope() {
        let t = token(json!({"sub": "alice", "n": 7, "aud": ["a", "b"], "ok": true}));
        let h = claim_headers(
            &t,
            &map(&[
                ("x-sub", "sub"),
                ("x-n", "n"),
                ("x-aud", "aud"),
                ("x-ok", "ok"),
                ("x-scope", "scope"),
            ]),
            ",",
        );
        assert_eq!(
            h,
            map(&[
                ("x-sub", "alice"),
                ("x-n", "7"),
                ("x-aud", "a,b"),
                ("x-ok", "true"),
                ("x-scope", "read write")
            ])
        );
    }

    #[test]
    fn skips_absent_nested_and_control_characters() {
        let t = token(json!({"obj": {"a": 1}, "nested": [[1]], "evil": "a\r\nx-admin: 1"}));
        let h = claim_headers(
            &t,
            &map(&[
                ("x-missing", "missing"),
                ("x-obj", "obj"),
                ("x-nested", "nested"),
                ("x-evil", "evil"),
            ]),
            ",",
        );
        assert!(h.is_empty(), "{h:?}");
    }
}
