//! The configuration read by [`reader`](super::reader) must be what the derived `Deserialize`
//! reads, and every error the same text (serde_json's, with its line and column): each
//! configuration below and thousands of broken variants of it are parsed both ways.

use super::{RawConfig, raw_layout, reader};
use serde_json::{Value, json};

/// Both ways: the raw config's `Debug` text, or the error's text.
fn both(text: &str) -> (String, String) {
    let derived = match serde_json::from_slice::<RawConfig>(text.as_bytes()) {
        Ok(raw) => format!("{raw:?}"),
        Err(e) => format!("error: {e}"),
    };
    let read = match reader::read(text.as_bytes(), &raw_layout::CONFIG) {
        Ok(fields) => format!("{:?}", raw_layout::config(fields)),
        Err(e) => format!("error: {e}"),
    };
    (derived, read)
}

/// Every field of every raw struct set (a configuration that parses; it need not validate).
fn everything() -> Value {
    json!({
        "providers": [{
            "name": "a", "issuer": "http://127.0.0.1:9000", "audiences": ["x", "y"],
            "algorithms": ["ES256", "RS256"],
            "jwks": {"cluster": "idp", "path": "/jwks", "authority": "idp", "refresh_seconds": 60,
                     "min_early_refresh_seconds": 5, "timeout_ms": 1000},
            "discovery": {"cluster": "idp", "path": "/.well-known", "authority": "idp",
                          "timeout_ms": 10, "refresh_seconds": 20, "min_early_refresh_seconds": 2,
                          "origins": {"https://a": "a", "https://b": "b"}},
            "inline_jwks": {"keys": [{"kty": "EC", "x": 1.5, "n": null}]},
            "leeway_seconds": 3, "max_token_lifetime_seconds": 3600,
            "backchannel_logout_audiences": ["gw"],
            "introspection": {"cluster": "idp", "path": "/introspect", "authority": "idp",
                              "timeout_ms": 7, "client_id": "c", "client_secret": "s",
                              "introspect": "always", "cache_seconds": 8,
                              "negative_cache_seconds": 9, "jwt_response": true},
            "token_types": ["at+jwt"], "forward_token": false,
            "token_sources": [{"header": "authorization", "prefix": "Bearer "},
                              {"query": "access_token"}, {"cookie": "at"}],
            "revoke": {"cluster": "idp", "path": "/revoke", "authority": "idp", "timeout_ms": 4,
                       "client_id": "c", "client_secret": "s"},
            "dpop": "allowed", "dpop_algorithms": ["ES256"], "dpop_proof_max_age_seconds": 60,
            "dpop_proof_leeway_seconds": 5, "dpop_htu_base": "https://api.example"
        }, {
            "issuer": "http://127.0.0.1:9001", "audiences": [], "algorithms": ["EdDSA"],
            "dpop": "required", "introspection": {"client_id": "c", "client_secret": "s",
                                                  "introspect": "opaque"}
        }],
        "realm": "r", "max_token_bytes": 4096,
        "claim_headers": {"x-a": "sub", "x-b": "iss"}, "claim_header_separator": ";",
        "rules": [
            {"match": {"prefix": "/api", "methods": ["GET", "POST"]}, "action": "allow_missing",
             "scopes": ["read"], "claims": {"role": "admin", "n": [1, {"a": null}]},
             "providers": ["a"]},
            {"match": {"exact": "/health"}, "action": "bypass"},
            {"match": {"regex": "^/x/[0-9]+$"}, "action": "require"}
        ],
        "idp_client": {"client_id": "gw", "client_secret": "secret"},
        "revocation_feed": {"cluster": "idp", "path": "/feed", "authority": "idp",
                            "timeout_ms": 1, "poll_ms": 2, "long_poll_seconds": 3,
                            "require_initial_sync": false},
        "logout": {"path": "/logout",
                   "revoke": {"cluster": "idp", "path": "/revoke", "authority": "idp",
                              "timeout_ms": 5, "provider": "a"},
                   "resource_server": {"cluster": "rs", "path": "/rev", "authority": "rs",
                                       "timeout_ms": 6, "secret_header": "x-s", "secret": "t"}},
        "backchannel_logout": {"path": "/bcl", "max_body_bytes": 100,
                               "max_verifications_per_second": 7, "max_token_age_seconds": 8},
        "hub": {"cluster": "hub", "authority": "hub", "timeout_ms": 9, "cutoffs_path": "/c",
                "backchannel_logout_path": "/b", "issuers": ["http://127.0.0.1:9000"]},
        "introspection_cache_entries": 1000, "cache_max_entries": 10,
        "dpop_replay_cache_entries": 2048
    })
}

/// Values of every JSON type, including the edges of the number types.
fn replacements() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(0),
        json!(1),
        json!(-1),
        json!(1.5),
        json!(1.0),
        json!(4_294_967_296_u64),
        json!(u64::MAX),
        json!(-9_223_372_036_854_775_808_i64),
        json!("s"),
        json!(""),
        json!("disabled"),
        json!("allow_missing"),
        json!("opaque"),
        json!([]),
        json!(["s"]),
        json!([1]),
        json!([["a", "/p"]]),
        json!([{"a": 1}]),
        json!({}),
        json!({"a": "b"}),
        json!({"a": 1}),
        json!({"required": null}),
        json!({"bypass": 1}),
        json!({"prefix": "/"}),
        json!(["c", "/p"]),
        json!(["c", "/p", null, 5, 6, 7, 8]),
        json!(["c"]),
        json!({"client_id": "c"}),
    ]
}

/// Every object and array in `doc`, as JSON pointers.
fn containers(doc: &Value, at: String, out: &mut Vec<String>) {
    match doc {
        Value::Object(map) => {
            out.push(at.clone());
            for (k, v) in map {
                containers(v, format!("{at}/{}", escape(k)), out);
            }
        }
        Value::Array(items) => {
            out.push(at.clone());
            for (i, v) in items.iter().enumerate() {
                containers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A key as a JSON pointer's reference token (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// `doc` and its broken variants: a key removed, added, duplicated or its value replaced; an
/// element of an array replaced or removed; each written compact and pretty (positions differ).
fn variants(doc: &Value) -> Vec<String> {
    let mut docs = vec![doc.clone()];
    let mut texts = Vec::new();
    let mut paths = Vec::new();
    containers(doc, String::new(), &mut paths);
    for path in &paths {
        let Some(node) = doc.pointer(path) else {
            continue;
        };
        let keys: Vec<String> = match node {
            Value::Object(map) => map.keys().map(|k| escape(k)).collect(),
            Value::Array(items) => (0..items.len()).map(|i| i.to_string()).collect(),
            _ => continue,
        };
        for key in &keys {
            let mut removed = doc.clone();
            match removed.pointer_mut(path) {
                Some(Value::Object(map)) => {
                    map.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    items.remove(key.parse::<usize>().unwrap());
                }
                _ => {}
            }
            docs.push(removed);
            for value in replacements() {
                let mut replaced = doc.clone();
                *replaced.pointer_mut(&format!("{path}/{key}")).unwrap() = value;
                docs.push(replaced);
            }
            if node.is_object() {
                // The same key twice: written by hand, a map cannot hold it.
                let mut marked = doc.clone();
                let original = doc.pointer(&format!("{path}/{key}")).unwrap().to_string();
                *marked.pointer_mut(&format!("{path}/{key}")).unwrap() = json!("@@dup@@");
                let name =
                    serde_json::to_string(&key.replace("~1", "/").replace("~0", "~")).unwrap();
                texts.push(marked.to_string().replacen(
                    &format!("{name}:\"@@dup@@\""),
                    &format!("{name}:{original},{name}:{original}"),
                    1,
                ));
            }
        }
        for extra in ["aaa", "zzz", "Providers"] {
            let mut added = doc.clone();
            if let Some(Value::Object(map)) = added.pointer_mut(path) {
                map.insert(extra.to_owned(), json!(1));
                docs.push(added);
            }
        }
    }
    for d in docs {
        texts.push(d.to_string());
        texts.push(serde_json::to_string_pretty(&d).unwrap());
    }
    texts
}

#[test]
fn every_configuration_reads_as_derived() {
    let mut checked = 0;
    let mut failed = Vec::new();
    for doc in [everything(), json!({"providers": []})] {
        for text in variants(&doc) {
            let (derived, read) = both(&text);
            if derived != read {
                failed.push(format!("{text}\n  derived: {derived}\n  read:    {read}"));
            }
            checked += 1;
        }
    }
    assert!(checked > 5_000, "{checked} variants");
    assert!(
        failed.is_empty(),
        "{} of {checked} differ:\n{}",
        failed.len(),
        failed[..failed.len().min(5)].join("\n")
    );
}

#[test]
fn the_full_configuration_reads_with_every_field_set() {
    let (derived, read) = both(&everything().to_string());
    assert_eq!(derived, read);
    // It parsed, and the last field of each struct was read (not left at its default).
    for set in [
        "dpop_htu_base: Some(\"https://api.example\")",
        "timeout_ms: Some(1000)",
        "origins: Some({",
        "jwt_response: Some(true)",
        "cookie: Some(\"at\")",
        "client_secret: \"s\" }",
        "providers: [\"a\"]",
        "methods: [\"GET\"",
        "require_initial_sync: Some(false)",
        "provider: Some(\"a\")",
        "secret: \"t\"",
        "max_token_age_seconds: Some(8)",
        "issuers: [\"http",
        "dpop_replay_cache_entries: Some(2048)",
        "client_secret: \"secret\"",
        "introspect: Some(Opaque)",
        "action: Some(Bypass)",
    ] {
        assert!(read.contains(set), "{set} in {read}");
    }
}

#[test]
fn malformed_documents_fail_as_derived() {
    for text in [
        "",
        " ",
        "null",
        "[]",
        "[[]]",
        "1",
        "\"x\"",
        "{",
        "}",
        "{}",
        "{\"providers\": [}",
        "{\"providers\": []} x",
        "{\"providers\": [],}",
        "{\"providers\": [], \"rules\": [,]}",
        "[[], null, 5]",
        "[[{\"issuer\": \"i\"}]]",
        "[[[\"i\", [], []]]]",
        "{\"providers\": [[\"i\", [\"a\"], [\"ES256\"], null, null, null, null, 1, 2, null, null, null, true, null, null, \"off\"]]}",
        "{\"providers\": [{\"issuer\": \"i\", \"audiences\": [], \"algorithms\": [], \"dpop\": {\"allowed\": null}}]}",
        "{\"providers\": [{\"issuer\": \"i\", \"audiences\": [], \"algorithms\": [], \"dpop\": {\"allowed\": 1}}]}",
        "{\"providers\": [{\"issuer\": \"i\", \"audiences\": [], \"algorithms\": [], \"dpop\": {\"allowed\": null, \"x\": 2}}]}",
        "{\"providers\": [{\"issuer\": \"\\ud800\", \"audiences\": [], \"algorithms\": []}]}",
        "{\"providers\": [{\"issuer\": \"i\\u0041\", \"audiences\": [\"\\n\"], \"algorithms\": []}]}",
        "{\"providers\": [], \"max_token_bytes\": 1e3}",
        "{\"providers\": [], \"max_token_bytes\": -0}",
        "{\"providers\": [], \"max_token_bytes\": 99999999999999999999999}",
        "{\"providers\": [], \"rules\": [{\"match\": {}, \"claims\": {\"a\": 1, \"a\": 2}}]}",
        "{\"providers\": [], \"claim_headers\": {\"a\": \"1\", \"a\": \"2\"}}",
    ] {
        let (derived, read) = both(text);
        assert_eq!(derived, read, "{text}");
    }
}
