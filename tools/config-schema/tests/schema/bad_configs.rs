//! Bad configurations (the table in bad_configs.json, edits of one valid configuration with
//! every block) are refused by both the schema and the parser.

use config_schema::Checker;
use filter::config::FilterConfig;
use serde_json::{Value, json};

/// A valid configuration with every block: two providers (keys from a JWKS and from
/// discovery, introspection, revocation endpoints), the feed, logout, back-channel logout, the
/// hub, claim headers and rules.
pub fn full_config() -> Value {
    json!({
        "realm": "demo",
        "providers": [
            {"name": "local", "issuer": "http://127.0.0.1:9000", "audiences": ["demo-api"],
             "algorithms": ["ES256"], "jwks": {"cluster": "idp", "path": "/.well-known/jwks.json"},
             "backchannel_logout_audiences": ["gateway"],
             "token_sources": [{"header": "authorization", "prefix": "Bearer "}, {"cookie": "at"}],
             "dpop": "allowed", "dpop_htu_base": "https://api.example.com"},
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
        "claim_headers": {"x-auth-sub": "sub"},
        "rules": [
            {"match": {"exact": "/healthz"}, "action": "bypass"},
            {"match": {"prefix": "/api/", "methods": ["GET"]}, "scopes": ["read"],
             "claims": {"tenant": "a"}, "providers": ["local"]},
            {"match": {"regex": "^/x/[0-9]+$"}}
        ]
    })
}

/// One case of bad_configs.json: `remove` these keys, then `set` these (JSON pointers), and
/// the parser's error names `parser_says`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    case: String,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    set: serde_json::Map<String, Value>,
    parser_says: String,
}

impl Case {
    fn pointers(&self) -> impl Iterator<Item = &str> {
        self.remove
            .iter()
            .chain(self.set.keys())
            .map(String::as_str)
    }

    fn apply(&self, config: &mut Value) {
        for pointer in &self.remove {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let parent = config.pointer_mut(parent).and_then(Value::as_object_mut);
            let removed = parent.and_then(|p| p.remove(key));
            assert!(removed.is_some(), "{}: nothing at {pointer}", self.case);
        }
        for (pointer, value) in &self.set {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            match config.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.insert(key.to_owned(), value.clone());
                }
                Some(Value::Array(items)) => items[key.parse::<usize>().unwrap()] = value.clone(),
                _ => panic!("{}: no object or list at {parent}", self.case),
            }
        }
    }
}

fn cases() -> Vec<Case> {
    serde_json::from_str(include_str!("bad_configs.json")).unwrap()
}

#[test]
fn the_table_has_every_kind_of_mistake() {
    let cases = cases();
    assert!(cases.len() >= 80, "{} cases", cases.len());
    for kind in [
        "unknown field",
        "invalid type",
        "missing field",
        "unknown variant",
        "must be between",
    ] {
        let config_errors: Vec<String> = cases
            .iter()
            .filter_map(|c| {
                let mut config = full_config();
                c.apply(&mut config);
                FilterConfig::from_json(config.to_string().as_bytes()).err()
            })
            .map(|e| e.to_string())
            .filter(|e| e.contains(kind))
            .collect();
        assert!(
            !config_errors.is_empty(),
            "no case where the parser says {kind:?}"
        );
    }
}

#[test]
fn the_full_configuration_of_the_bad_cases_is_itself_valid() {
    let problems = Checker::new().unwrap().problems(&full_config());
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn bad_configurations_are_refused_by_both_the_schema_and_the_parser() {
    let checker = Checker::new().unwrap();
    let mut failures = Vec::new();
    for case in cases() {
        let mut config = full_config();
        case.apply(&mut config);
        let name = &case.case;
        let says = &case.parser_says;
        match FilterConfig::from_json(config.to_string().as_bytes()) {
            Ok(_) => failures.push(format!("{name}: the parser accepts it")),
            Err(e) if !e.to_string().contains(says.as_str()) => failures.push(format!(
                "{name}: the parser refuses it for another reason: {e} (expected {says:?})"
            )),
            Err(_) => {}
        }
        let errors = checker.schema_errors_with_paths(&config);
        // At an edited value, inside it (an element of a list set whole), or above it (a rule
        // of the object holding it, or a cross-key rule of the configuration).
        let related = |path: &str| {
            path.is_empty()
                || case.pointers().any(|edited| {
                    edited == path
                        || edited.starts_with(&format!("{path}/"))
                        || path.starts_with(&format!("{edited}/"))
                })
        };
        if errors.is_empty() {
            failures.push(format!("{name}: the schema accepts it"));
        } else if !errors.iter().any(|(path, _)| related(path)) {
            failures.push(format!(
                "{name}: the schema refuses it elsewhere: {errors:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
