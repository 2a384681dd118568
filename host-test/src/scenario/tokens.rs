//! Keys and tokens of scenarios: derived from seeds, signed at request time against the clock.
//! The keys and signatures are test-support's, the same as the filter's and host-test's tests.

use super::{KeySpec, ResponseSpec, TokenSpec};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use test_support::{Issuer, b64};

/// A scenario key: ES256 or EdDSA.
pub(crate) struct Key(pub(crate) Issuer);

impl Key {
    pub(crate) fn new(name: &str, spec: &KeySpec) -> Result<Self, String> {
        let kid = spec.kid.as_deref().unwrap_or(name);
        match spec.alg.as_str() {
            "ES256" => Issuer::try_es256(spec.seed, kid)
                .map(Key)
                .map_err(|e| format!("key {name}: {e}")),
            "EdDSA" => Ok(Key(Issuer::eddsa(spec.seed, kid))),
            other => Err(format!(
                "key {name}: only ES256 and EdDSA keys are supported, not {other}"
            )),
        }
    }

    pub(crate) fn jwk(&self) -> Value {
        self.0.jwk()
    }
}

/// A scenario's signing keys by name (derived from their seeds, so every runner has the same).
pub struct SigningKeys(BTreeMap<String, Key>);

impl SigningKeys {
    pub(crate) fn new(specs: &BTreeMap<String, KeySpec>) -> Result<Self, String> {
        specs
            .iter()
            .map(|(name, spec)| Key::new(name, spec).map(|k| (name.clone(), k)))
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(SigningKeys)
    }

    /// The token text for `spec` at Unix time `now`.
    pub(crate) fn token(
        &self,
        spec: &TokenSpec,
        default_claims: &Map<String, Value>,
        now: u64,
    ) -> Result<String, String> {
        let key = self.get(&spec.key)?;
        let mut token = spec.clone();
        resolve_thumbprints(&mut token.claims, self)?;
        build(&token, key, default_claims, now)
    }

    pub(crate) fn get(&self, name: &str) -> Result<&Key, String> {
        self.0.get(name).ok_or_else(|| format!("no key {name}"))
    }

    /// A JWKS document with the public halves of these keys.
    pub fn jwks(&self, names: &[String]) -> Result<Value, String> {
        let keys: Result<Vec<Value>, String> = names
            .iter()
            .map(|n| {
                self.0
                    .get(n)
                    .map(Key::jwk)
                    .ok_or_else(|| format!("no key {n}"))
            })
            .collect();
        Ok(json!({ "keys": keys? }))
    }
}

/// A fake upstream's answer, ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    pub status: u16,
    /// In order; `content-type` comes after the spec's own headers when `json`/`jwks` set it.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub(crate) fn render(
    spec: &ResponseSpec,
    keys: &SigningKeys,
    now: u64,
) -> Result<CannedResponse, String> {
    let mut out = CannedResponse {
        status: spec.status,
        headers: spec
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        body: spec.body.clone().unwrap_or_default(),
    };
    let mut json_body = |body: String| {
        out.headers
            .push(("content-type".to_owned(), "application/json".to_owned()));
        out.body = body;
    };
    if let Some(value) = &spec.json {
        let mut value = value.clone();
        resolve_time(&mut value, now);
        json_body(value.to_string());
    }
    if let Some(names) = &spec.jwks {
        json_body(keys.jwks(names)?.to_string());
    }
    Ok(out)
}

/// Replaces `"thumbprint:NAME"` strings (anywhere in `claims`) with the RFC 7638 thumbprint of
/// key NAME: a DPoP-bound token's `"cnf": {"jkt": "thumbprint:client"}`.
fn resolve_thumbprints(claims: &mut Map<String, Value>, keys: &SigningKeys) -> Result<(), String> {
    fn walk(value: &mut Value, keys: &SigningKeys) -> Result<(), String> {
        match value {
            Value::String(s) => {
                if let Some(name) = s.strip_prefix("thumbprint:") {
                    *value = Value::from(keys.get(name)?.0.thumbprint());
                }
            }
            Value::Array(items) => {
                for v in items {
                    walk(v, keys)?;
                }
            }
            Value::Object(map) => {
                for v in map.values_mut() {
                    walk(v, keys)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    for v in claims.values_mut() {
        walk(v, keys)?;
    }
    Ok(())
}

/// Replaces `"now"`, `"now+N"`, `"now-N"` strings (anywhere in `value`) with Unix seconds.
pub(crate) fn resolve_time(value: &mut Value, now: u64) {
    match value {
        Value::String(s) => {
            if let Some(t) = time_placeholder(s, now) {
                *value = Value::from(t);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| resolve_time(v, now)),
        Value::Object(map) => map.values_mut().for_each(|v| resolve_time(v, now)),
        _ => {}
    }
}

fn time_placeholder(text: &str, now: u64) -> Option<u64> {
    let rest = text.strip_prefix("now")?;
    if rest.is_empty() {
        return Some(now);
    }
    let (sign, digits) = rest.split_at(1);
    let n: u64 = digits.parse().ok()?;
    match sign {
        "+" => now.checked_add(n),
        "-" => now.checked_sub(n),
        _ => None,
    }
}

/// `base` with `over` merged in; a `null` in `over` removes the field.
pub(crate) fn merged(base: &Map<String, Value>, over: &Map<String, Value>) -> Map<String, Value> {
    let mut out = base.clone();
    for (k, v) in over {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Builds the token text for `spec` at `now`.
pub(crate) fn build(
    spec: &TokenSpec,
    key: &Key,
    default_claims: &Map<String, Value>,
    now: u64,
) -> Result<String, String> {
    if let Some(raw) = &spec.raw {
        return Ok(raw.clone());
    }
    let mut claims = Value::Object(merged(default_claims, &spec.claims));
    resolve_time(&mut claims, now);
    let base_header = key.0.header();
    let header = match &base_header {
        Value::Object(map) => Value::Object(merged(map, &spec.header)),
        _ => base_header.clone(),
    };
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut signature = key.0.signature(input.as_bytes());
    let mut payload_part = input.clone();
    match spec.tamper.as_deref() {
        None => {}
        Some("signature") => {
            if let Some(byte) = signature.get_mut(10) {
                *byte ^= 0x01;
            }
        }
        Some("payload") => {
            if let Value::Object(map) = &mut claims {
                map.insert("sub".to_owned(), Value::from("mallory"));
            }
            payload_part = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
        }
        Some(other) => return Err(format!("unknown tamper {other:?} (signature, payload)")),
    }
    Ok(format!("{payload_part}.{}", b64(&signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_placeholders() {
        let mut v = json!({"exp": "now+300", "iat": "now-10", "nbf": "now", "sub": "nowhere",
                           "list": ["now+1"]});
        resolve_time(&mut v, 1000);
        assert_eq!(
            v,
            json!({"exp": 1300, "iat": 990, "nbf": 1000, "sub": "nowhere", "list": [1001]})
        );
    }

    #[test]
    fn merging_removes_nulls() {
        let base = json!({"a": 1, "b": 2});
        let over = json!({"b": null, "c": 3});
        let (Value::Object(base), Value::Object(over)) = (base, over) else {
            unreachable!()
        };
        assert_eq!(Value::Object(merged(&base, &over)), json!({"a": 1, "c": 3}));
    }
}
