//! Claims of a valid access token, and deep merging of JSON (configurations, claim overrides).

use serde_json::{Value, json};

/// Claims of a valid RFC 9068 access token at Unix time `now` (issued and valid from 10 s before,
/// expiring 300 s after), for user `alice` of `demo-client` with session `sid-1`.
pub fn access_token_claims(issuer: &str, audience: &str, now: u64) -> Value {
    let issued = now.saturating_sub(10);
    json!({
        "iss": issuer, "sub": "alice", "aud": audience, "client_id": "demo-client",
        "iat": issued, "nbf": issued, "exp": now.saturating_add(300), "jti": "jti-1",
        "sid": "sid-1", "scope": "read write"
    })
}

/// Merges `extra` into `base`: objects key by key, arrays element by element (an element of
/// `extra` merges into the one at the same index), anything else replaced.
pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (Value::Array(b), Value::Array(e)) => {
            for (i, v) in e.into_iter().enumerate() {
                match b.get_mut(i) {
                    Some(slot) => merge(slot, v),
                    None => b.push(v),
                }
            }
        }
        (b, e) => *b = e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_valid_around_now() {
        let c = access_token_claims("https://i", "api", 1000);
        assert_eq!(c["iss"], "https://i");
        assert_eq!(c["aud"], "api");
        assert_eq!(
            (c["iat"].as_u64(), c["nbf"].as_u64()),
            (Some(990), Some(990))
        );
        assert_eq!(c["exp"].as_u64(), Some(1300));
    }

    #[test]
    fn merge_goes_into_objects_and_array_elements() {
        let mut base = json!({"providers": [{"name": "a", "algorithms": ["ES256"]}], "x": 1});
        merge(
            &mut base,
            json!({"providers": [{"algorithms": ["EdDSA"]}, {"name": "b"}], "x": {"y": 2}}),
        );
        assert_eq!(
            base,
            json!({"providers": [{"name": "a", "algorithms": ["EdDSA"]}, {"name": "b"}],
                   "x": {"y": 2}})
        );
    }
}
