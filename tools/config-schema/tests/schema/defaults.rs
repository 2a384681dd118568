//! Every `default` of the schema is what the parser uses when the key is absent.

use config_schema::filter_schema;
use filter::config::FilterConfig;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Every block of the configuration with only its required keys, so that every default of the
/// schema applies somewhere.
fn minimal_full_config() -> Value {
    json!({
        "providers": [
            {"name": "local", "issuer": "http://127.0.0.1:9000", "audiences": ["demo-api"],
             "algorithms": ["ES256"], "jwks": {"cluster": "idp", "path": "/jwks"},
             "backchannel_logout_audiences": ["gateway"]},
            {"name": "op", "issuer": "https://op.example", "audiences": ["api"],
             "algorithms": ["RS256"], "discovery": {"cluster": "op"},
             "introspection": {"cluster": "op", "path": "/introspect", "client_id": "gw",
                               "client_secret": "0123456789abcdef0123"},
             "revoke": {"cluster": "op", "path": "/revoke", "client_id": "gw",
                        "client_secret": "0123456789abcdef0123"}}
        ],
        "idp_client": {"client_id": "gateway", "client_secret": "gateway-secret-0123456789"},
        "revocation_feed": {"cluster": "idp", "path": "/oauth2/revocations"},
        "logout": {
            "revoke": {"cluster": "idp", "path": "/oauth2/revoke", "provider": "local"},
            "resource_server": {"cluster": "rs", "path": "/internal/sessions/revoke",
                                "secret_header": "x-gateway-secret",
                                "secret": "demo-gateway-to-rs-secret-0123456789"}
        },
        "backchannel_logout": {},
        "hub": {"cluster": "idp", "issuers": ["https://op.example"]},
        "rules": [{"match": {"prefix": "/"}}]
    })
}

/// The schemas `node` stands for (following `$ref`, `allOf`, `anyOf`, `oneOf`), each with its
/// JSON pointer in the schema.
fn alternatives<'a>(
    schema: &'a Value,
    at: String,
    node: &'a Value,
    out: &mut Vec<(String, &'a Value)>,
) {
    if let Some(target) = node["$ref"].as_str() {
        let pointer = target.trim_start_matches('#');
        alternatives(
            schema,
            pointer.to_owned(),
            schema.pointer(pointer).unwrap(),
            out,
        );
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, sub) in node[key].as_array().into_iter().flatten().enumerate() {
            alternatives(schema, format!("{at}/{key}/{i}"), sub, out);
        }
    }
    out.push((at, node));
}

/// Every key absent from `instance` that has a default: (where in the config, the key, the
/// default, where in the schema).
fn absent_defaults(
    schema: &Value,
    node: &Value,
    at_schema: String,
    instance: &Value,
    at: String,
    out: &mut Vec<(String, String, Value, String)>,
) {
    let mut nodes = Vec::new();
    alternatives(schema, at_schema, node, &mut nodes);
    for (node_at, node) in nodes {
        if let (Some(properties), Value::Object(object)) =
            (node["properties"].as_object(), instance)
        {
            for (key, property) in properties {
                let property_at = format!("{node_at}/properties/{key}");
                match object.get(key) {
                    Some(value) => absent_defaults(
                        schema,
                        property,
                        property_at,
                        value,
                        format!("{at}/{key}"),
                        out,
                    ),
                    None => {
                        if let Some(default) = property.get("default") {
                            out.push((at.clone(), key.clone(), default.clone(), property_at));
                        }
                    }
                }
            }
        }
        if let (Some(items), Value::Array(elements)) = (node.get("items"), instance) {
            for (i, element) in elements.iter().enumerate() {
                absent_defaults(
                    schema,
                    items,
                    format!("{node_at}/items"),
                    element,
                    format!("{at}/{i}"),
                    out,
                );
            }
        }
    }
}

/// Every place in the schema with a `default`.
fn schema_defaults(node: &Value, at: String, out: &mut BTreeSet<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                for (key, property) in properties {
                    if property.get("default").is_some() {
                        out.insert(format!("{at}/properties/{key}"));
                    }
                }
            }
            for (key, value) in map {
                schema_defaults(value, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                schema_defaults(value, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The typed configuration, printed; claim headers sorted (each header is set on its own, so
/// their order means nothing, and a JSON object has none).
fn typed(config: &Value) -> Result<String, String> {
    let mut config =
        FilterConfig::from_json(config.to_string().as_bytes()).map_err(|e| e.to_string())?;
    config.claim_headers.sort();
    Ok(format!("{config:?}"))
}

fn parsed(config: &Value) -> String {
    typed(config).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_default_in_the_schema_is_what_the_parser_uses_when_the_key_is_absent() {
    let schema = filter_schema();
    let base = minimal_full_config();
    let expected = parsed(&base);
    let mut absent = Vec::new();
    absent_defaults(
        &schema,
        &schema,
        String::new(),
        &base,
        String::new(),
        &mut absent,
    );
    let mut exercised = BTreeSet::new();
    let mut failures = Vec::new();
    for (at, key, default, schema_at) in absent {
        let mut config = base.clone();
        config
            .pointer_mut(&at)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(key.clone(), default.clone());
        match typed(&config) {
            Ok(c) if c == expected => {}
            Ok(_) => failures.push(format!("{at}/{key}: {default} is not the parser's default")),
            Err(e) => failures.push(format!("{at}/{key}: {default} is refused: {e}")),
        }
        exercised.insert(schema_at);
    }
    let mut all = BTreeSet::new();
    schema_defaults(&schema, String::new(), &mut all);
    // `if`/`then`/`anyOf` members of cross-field rules carry no defaults; every other default
    // must have been tried.
    let untried: Vec<_> = all.difference(&exercised).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        untried.is_empty(),
        "defaults not tried (add their block to minimal_full_config): {untried:?}"
    );
    assert!(
        exercised.len() >= 40,
        "only {} defaults tried",
        exercised.len()
    );
}

#[test]
fn a_wrong_default_would_be_caught() {
    let base = minimal_full_config();
    let mut config = base.clone();
    config["providers"][0]["leeway_seconds"] = json!(31);
    assert_ne!(parsed(&config), parsed(&base));
}
