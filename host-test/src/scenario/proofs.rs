//! DPoP proofs of scenario requests (RFC 9449 §4.2), made when the request is sent: fresh `iat`
//! and `jti` on each runner, `htu` from the URL the runner sends to.

use super::RequestSpec;
use super::tokens::{SigningKeys, merged, resolve_time};
use serde_json::{Map, Value};
use test_support::ath;

/// Every `dpop` header value of `request`.
pub(crate) fn build_all(
    keys: &SigningKeys,
    request: &RequestSpec,
    token: Option<&str>,
    origin: &str,
    now: u64,
    index: usize,
) -> Result<Vec<String>, String> {
    let path = request.path.split(['?', '#']).next().unwrap_or("/");
    request
        .dpop
        .iter()
        .enumerate()
        .map(|(n, spec)| {
            let key = &keys.get(&spec.key)?.0;
            let signer = match &spec.signed_by {
                Some(name) => &keys.get(name)?.0,
                None => key,
            };
            let mut defaults = Map::new();
            defaults.insert("htm".into(), Value::from(request.method.clone()));
            defaults.insert("htu".into(), Value::from(format!("{origin}{path}")));
            defaults.insert("iat".into(), Value::from("now"));
            defaults.insert("jti".into(), Value::from(format!("proof-{index}-{n}")));
            if let Some(token) = token {
                defaults.insert("ath".into(), Value::from(ath(token)));
            }
            let mut claims = Value::Object(merged(&defaults, &spec.claims));
            resolve_time(&mut claims, now);
            if let Value::Object(map) = &mut claims
                && let Some(Value::String(htu)) = map.get_mut("htu")
            {
                *htu = htu.replace("{origin}", origin);
            }
            let mut header = key.proof_header();
            if let Some(Value::Object(jwk)) = header.get_mut("jwk") {
                jwk.extend(spec.jwk_members.clone());
            }
            let header = match header {
                Value::Object(map) => Value::Object(merged(&map, &spec.header)),
                other => other,
            };
            Ok(signer.sign(&header, &claims))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::KeySpec;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn a_proof_names_the_request() {
        let mut specs = BTreeMap::new();
        specs.insert(
            "c".to_owned(),
            serde_json::from_value::<KeySpec>(json!({"alg": "ES256", "seed": 5})).unwrap(),
        );
        let keys = SigningKeys::new(&specs).unwrap();
        let request: RequestSpec = serde_json::from_value(json!({
            "method": "POST", "path": "/api/x?y=1",
            "dpop": [{"key": "c"}, {"key": "c", "claims": {"htu": "{origin}/other", "ath": null}}]
        }))
        .unwrap();
        let proofs = build_all(&keys, &request, Some("tok"), "http://h:1", 1000, 3).unwrap();
        let claims = |p: &str| -> Value {
            let part = p.split('.').nth(1).unwrap();
            serde_json::from_slice(
                &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part)
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(
            claims(&proofs[0]),
            json!({"htm": "POST", "htu": "http://h:1/api/x", "iat": 1000, "jti": "proof-3-0",
                   "ath": ath("tok")})
        );
        assert_eq!(claims(&proofs[1])["htu"], "http://h:1/other");
        assert!(claims(&proofs[1]).get("ath").is_none());
    }
}
