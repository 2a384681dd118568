//! The JSON Schema of the filter configuration (docs/filter-config.schema.json): fresh, accepted
//! by every configuration the project ships, refusing what the parser refuses, with the
//! parser's defaults, and the commands of docs/config-schema.md doing what the page says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use config_schema::{
    Checker, REGENERATE, SCHEMA_PATH, WASMPLUGIN_SCHEMA_PATH, filter_schema, to_text,
    wasmplugin_schema,
};
use filter::config::FilterConfig;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn files(dir: &str, extension: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    paths.sort();
    paths
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

// ---------------------------------------------------------------------------------------------
// Freshness

#[test]
fn the_checked_in_schemas_are_the_generated_ones() {
    for (path, schema) in [
        (SCHEMA_PATH, filter_schema()),
        (WASMPLUGIN_SCHEMA_PATH, wasmplugin_schema()),
    ] {
        let checked_in = std::fs::read_to_string(root().join(path)).unwrap_or_default();
        assert!(
            checked_in == to_text(&schema),
            "{path} is not what the configuration types generate: regenerate it with \
             `{REGENERATE}` (from the repository root) and commit it"
        );
    }
}

#[test]
fn the_generated_schemas_are_valid_draft_07_schemas() {
    for schema in [filter_schema(), wasmplugin_schema()] {
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
        jsonschema::meta::validate(&schema).unwrap_or_else(|e| panic!("{e}"));
        jsonschema::draft7::new(&schema).unwrap_or_else(|e| panic!("{e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Every configuration the project ships

/// The `${NAME}` placeholders of envoy/*.yaml, as scripts/up and the e2e tests fill them.
fn render(template: &str) -> String {
    let values = BTreeMap::from([
        ("LISTEN_PORT", "10000"),
        ("ADMIN_PORT", "9901"),
        ("IDP_PORT", "9000"),
        ("RS_PORT", "9100"),
        ("ISSUER", "http://127.0.0.1:9000"),
        ("LEEWAY_SECONDS", "30"),
        ("JWKS_REFRESH_SECONDS", "300"),
        ("FILTER_WASM", "/filter.wasm"),
    ]);
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').unwrap();
        let name = &after[..end];
        out.push_str(
            values
                .get(name)
                .unwrap_or_else(|| panic!("no value for ${{{name}}}")),
        );
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The filter configurations inside an Envoy config: the `configuration` of each Wasm filter
/// and the `filter_config` of each dynamic module filter (both a JSON `StringValue`).
fn envoy_filter_configs(node: &Value, out: &mut Vec<Value>) {
    match node {
        Value::Object(map) => {
            let holder = match map.get("@type").and_then(Value::as_str) {
                Some("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm") => {
                    node["config"].get("configuration")
                }
                Some(
                    "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                ) => node.get("filter_config"),
                _ => None,
            };
            if let Some(value) = holder.and_then(|h| h["value"].as_str()) {
                out.push(serde_json::from_str(value).unwrap_or_else(|e| panic!("{e}: {value}")));
            }
            map.values().for_each(|v| envoy_filter_configs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| envoy_filter_configs(v, out)),
        _ => {}
    }
}

/// The ```json blocks of a markdown file.
fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```json") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Every filter configuration the project ships, labelled, with whether it must be refused.
fn shipped_configs() -> Vec<(String, Value, bool)> {
    let mut configs = Vec::new();
    let mut envoy = 0;
    for path in files("envoy", "yaml")
        .into_iter()
        .chain(files("envoy/bench", "yaml"))
    {
        let text = render(&std::fs::read_to_string(&path).unwrap());
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        let mut found = Vec::new();
        docs.iter()
            .for_each(|d| envoy_filter_configs(d, &mut found));
        for (i, config) in found.into_iter().enumerate() {
            configs.push((format!("{} #{i}", relative(&path)), config, false));
            envoy += 1;
        }
    }
    assert!(envoy >= 6, "only {envoy} filter configs in envoy/");
    let mut istio = 0;
    for path in files("envoy/istio", "yaml") {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        if docs.iter().any(|d| d["kind"] == "WasmPlugin") {
            for (label, config) in
                config_schema::configs_in(Path::new(&relative(&path)), &text).unwrap()
            {
                configs.push((label, config, false));
                istio += 1;
            }
        }
    }
    assert!(istio >= 1, "no WasmPlugin pluginConfig in envoy/istio/");
    let mut docs = 0;
    for path in files("docs", "md")
        .into_iter()
        .chain([root().join("README.md")])
    {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, block) in json_blocks(&text).into_iter().enumerate() {
            // A filter configuration is an object with providers; other JSON (responses,
            // scenario files) is not one.
            let Ok(config) = serde_json::from_str::<Value>(&block) else {
                continue;
            };
            if config.get("providers").is_some() {
                configs.push((format!("{} json block {i}", relative(&path)), config, false));
                docs += 1;
            }
        }
    }
    assert!(docs >= 3, "only {docs} filter configs in docs/*.md");
    let mut scenarios = 0;
    for path in files("host-test/scenarios", "json") {
        let scenario: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Some(config) = scenario.get("config") {
            let rejected = scenario["config_rejected"] == true;
            configs.push((relative(&path), config.clone(), rejected));
            scenarios += 1;
        }
    }
    assert!(scenarios >= 15, "only {scenarios} scenario configs");
    configs
}

#[test]
fn every_shipped_configuration_validates_and_is_accepted_by_the_parser() {
    let checker = Checker::new().unwrap();
    let configs = shipped_configs();
    let labels: Vec<&str> = configs.iter().map(|(l, ..)| l.as_str()).collect();
    for expected in [
        "envoy/envoy.yaml #0",
        "envoy/envoy-native.yaml #0",
        "envoy/istio-sidecar.yaml #0",
        "envoy/bench/filter-full.yaml #0",
        "envoy/istio/wasmplugin.yaml: WasmPlugin oauth2-gateway",
        "docs/bring-your-own-idp.md json block 0",
    ] {
        assert!(
            labels.contains(&expected),
            "{expected} not found in {labels:?}"
        );
    }
    let mut failures = Vec::new();
    for (label, config, rejected) in &configs {
        if *rejected {
            continue;
        }
        let problems = checker.problems(config);
        if !problems.is_empty() {
            failures.push(format!("{label}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_scenarios_whose_config_is_rejected_are_refused_by_schema_and_parser() {
    let checker = Checker::new().unwrap();
    let rejected: Vec<_> = shipped_configs()
        .into_iter()
        .filter(|(_, _, rejected)| *rejected)
        .collect();
    assert!(!rejected.is_empty(), "no config_rejected scenario");
    for (label, config, _) in rejected {
        assert!(
            FilterConfig::from_json(config.to_string().as_bytes()).is_err(),
            "{label}: the parser accepts it"
        );
        // If a rejected scenario names a rule the schema cannot express, say so in the field's
        // description and list the scenario here instead.
        assert!(
            !checker.schema_errors(&config).is_empty(),
            "{label}: the schema accepts it"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bad configurations: refused by both

/// A valid configuration with every block: two providers (keys from a JWKS and from
/// discovery, introspection, revocation endpoints), the feed, logout, back-channel logout, the
/// hub, claim headers and rules.
fn full_config() -> Value {
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

enum Edit {
    Set(&'static str, Value),
    Remove(&'static str),
}
use Edit::{Remove, Set};

impl Edit {
    fn pointer(&self) -> &'static str {
        match self {
            Set(p, _) | Remove(p) => p,
        }
    }

    fn apply(&self, config: &mut Value) {
        let pointer = self.pointer();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = config
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("{pointer}: no parent"));
        match (self, parent) {
            (Set(_, value), Value::Object(map)) => {
                map.insert(key.to_owned(), value.clone());
            }
            (Set(_, value), Value::Array(items)) => {
                items[key.parse::<usize>().unwrap()] = value.clone()
            }
            (Remove(_), Value::Object(map)) => {
                assert!(map.remove(key).is_some(), "{pointer}: nothing to remove");
            }
            _ => panic!("{pointer}: cannot edit"),
        }
    }
}

/// (what is wrong, the edits to `full_config`, a part of the parser's error message).
fn bad_cases() -> Vec<(&'static str, Vec<Edit>, &'static str)> {
    vec![
        (
            "unknown top-level key",
            vec![Set("/typo_option", json!(1))],
            "unknown field `typo_option`",
        ),
        (
            "unknown key in jwks",
            vec![Set("/providers/0/jwks/url", json!("x"))],
            "unknown field `url`",
        ),
        (
            "unknown key in a rule's match",
            vec![Set("/rules/1/match/path", json!("/a"))],
            "unknown field `path`",
        ),
        (
            "string for a number",
            vec![Set("/max_token_bytes", json!("8192"))],
            "invalid type",
        ),
        (
            "string for a list",
            vec![Set("/providers/0/audiences", json!("demo-api"))],
            "invalid type",
        ),
        (
            "string for a boolean",
            vec![Set("/revocation_feed/require_initial_sync", json!("false"))],
            "invalid type",
        ),
        (
            "negative number",
            vec![Set("/providers/0/leeway_seconds", json!(-1))],
            "invalid value",
        ),
        (
            "max_token_bytes too small",
            vec![Set("/max_token_bytes", json!(100))],
            "max_token_bytes",
        ),
        (
            "max_token_bytes too large",
            vec![Set("/max_token_bytes", json!(65_537))],
            "max_token_bytes",
        ),
        (
            "refresh_seconds 0",
            vec![Set("/providers/0/jwks/refresh_seconds", json!(0))],
            "jwks.refresh_seconds",
        ),
        (
            "refresh_seconds above a day",
            vec![Set("/providers/1/discovery/refresh_seconds", json!(86_401))],
            "discovery.refresh_seconds",
        ),
        (
            "min_early_refresh_seconds 0",
            vec![Set("/providers/0/jwks/min_early_refresh_seconds", json!(0))],
            "min_early_refresh_seconds",
        ),
        (
            "timeout too short",
            vec![Set("/logout/resource_server/timeout_ms", json!(5))],
            "resource_server.timeout_ms",
        ),
        (
            "timeout too long",
            vec![Set("/providers/0/jwks/timeout_ms", json!(60_001))],
            "jwks.timeout_ms",
        ),
        (
            "poll_ms too short",
            vec![Set("/revocation_feed/poll_ms", json!(50))],
            "poll_ms",
        ),
        (
            "long poll too long",
            vec![Set("/revocation_feed/long_poll_seconds", json!(301))],
            "long_poll_seconds",
        ),
        (
            "leeway too large",
            vec![Set("/providers/0/leeway_seconds", json!(301))],
            "leeway_seconds",
        ),
        (
            "token lifetime too short",
            vec![Set("/providers/0/max_token_lifetime_seconds", json!(59))],
            "max_token_lifetime_seconds",
        ),
        (
            "cache too large",
            vec![Set("/cache_max_entries", json!(1_000_001))],
            "cache_max_entries",
        ),
        (
            "replay cache too small",
            vec![Set("/dpop_replay_cache_entries", json!(1_000))],
            "dpop_replay_cache_entries",
        ),
        (
            "introspection cache too small",
            vec![Set("/introspection_cache_entries", json!(255))],
            "introspection_cache_entries",
        ),
        (
            "introspection cache_seconds 0",
            vec![Set("/providers/1/introspection/cache_seconds", json!(0))],
            "cache_seconds",
        ),
        (
            "proof max age 0",
            vec![Set("/providers/0/dpop_proof_max_age_seconds", json!(0))],
            "dpop_proof_max_age_seconds",
        ),
        (
            "proof leeway too large",
            vec![Set("/providers/0/dpop_proof_leeway_seconds", json!(301))],
            "dpop_proof_leeway_seconds",
        ),
        (
            "back-channel body too large",
            vec![Set("/backchannel_logout/max_body_bytes", json!(70_000))],
            "max_body_bytes",
        ),
        (
            "back-channel verifications 0",
            vec![Set(
                "/backchannel_logout/max_verifications_per_second",
                json!(0),
            )],
            "max_verifications_per_second",
        ),
        (
            "back-channel token age too short",
            vec![Set("/backchannel_logout/max_token_age_seconds", json!(9))],
            "max_token_age_seconds",
        ),
        (
            "no providers key",
            vec![Remove("/providers")],
            "missing field `providers`",
        ),
        (
            "no issuer",
            vec![Remove("/providers/0/issuer")],
            "missing field `issuer`",
        ),
        (
            "no algorithms",
            vec![Remove("/providers/1/algorithms")],
            "missing field `algorithms`",
        ),
        (
            "no jwks path",
            vec![Remove("/providers/0/jwks/path")],
            "missing field `path`",
        ),
        (
            "no resource server",
            vec![Remove("/logout/resource_server")],
            "missing field `resource_server`",
        ),
        (
            "no resource server secret",
            vec![Remove("/logout/resource_server/secret")],
            "missing field `secret`",
        ),
        (
            "no hub issuers",
            vec![Remove("/hub/issuers")],
            "missing field `issuers`",
        ),
        (
            "no introspection client secret",
            vec![Remove("/providers/1/introspection/client_secret")],
            "missing field `client_secret`",
        ),
        (
            "unknown action",
            vec![Set("/rules/0/action", json!("allow"))],
            "unknown variant `allow`",
        ),
        (
            "unknown dpop mode",
            vec![Set("/providers/0/dpop", json!("on"))],
            "unknown variant `on`",
        ),
        (
            "unknown introspect mode",
            vec![Set(
                "/providers/1/introspection/introspect",
                json!("sometimes"),
            )],
            "unknown variant `sometimes`",
        ),
        (
            "HS256",
            vec![Set("/providers/0/algorithms", json!(["HS256"]))],
            "providers[0].algorithms[0]",
        ),
        (
            "alg none",
            vec![Set("/providers/0/algorithms", json!(["ES256", "none"]))],
            "providers[0].algorithms[1]",
        ),
        (
            "proof alg none",
            vec![Set("/providers/0/dpop_algorithms", json!(["none"]))],
            "dpop_algorithms[0]",
        ),
        (
            "no proof algorithms",
            vec![Set("/providers/0/dpop_algorithms", json!([]))],
            "dpop_algorithms",
        ),
        (
            "empty providers",
            vec![Set("/providers", json!([]))],
            "at least one provider",
        ),
        (
            "empty audiences",
            vec![Set("/providers/0/audiences", json!([]))],
            "providers[0].audiences",
        ),
        (
            "empty audience",
            vec![Set("/providers/0/audiences", json!([""]))],
            "providers[0].audiences",
        ),
        (
            "no algorithm",
            vec![Set("/providers/0/algorithms", json!([]))],
            "providers[0].algorithms",
        ),
        (
            "issuer with a space",
            vec![Set("/providers/0/issuer", json!(" http://127.0.0.1:9000"))],
            "providers[0].issuer",
        ),
        (
            "empty cluster",
            vec![Set("/revocation_feed/cluster", json!(""))],
            "revocation_feed.cluster",
        ),
        (
            "path without /",
            vec![Set("/logout/path", json!("oauth2/logout"))],
            "logout.path",
        ),
        (
            "path with a space",
            vec![Set("/providers/0/jwks/path", json!("/jw ks"))],
            "jwks.path",
        ),
        (
            "authority with a space",
            vec![Set("/providers/0/jwks/authority", json!("idp :80"))],
            "jwks.authority",
        ),
        (
            "back-channel path with a query",
            vec![Set("/backchannel_logout/path", json!("/bcl?x=1"))],
            "backchannel_logout.path",
        ),
        (
            "prefix and exact",
            vec![Set("/rules/1/match/exact", json!("/api/x"))],
            "exactly one of prefix",
        ),
        (
            "match without a path",
            vec![Set("/rules/2/match", json!({"methods": ["GET"]}))],
            "exactly one of prefix",
        ),
        (
            "lowercase method",
            vec![Set("/rules/1/match/methods", json!(["get"]))],
            "methods[0]",
        ),
        (
            "scope with a space",
            vec![Set("/rules/1/scopes", json!(["read write"]))],
            "scopes[0]",
        ),
        (
            "bypass with scopes",
            vec![Set("/rules/0/scopes", json!(["read"]))],
            "bypass rule",
        ),
        (
            "bypass with claims",
            vec![Set("/rules/0/claims", json!({"tenant": "a"}))],
            "bypass rule",
        ),
        (
            "claim value an object",
            vec![Set("/rules/1/claims/tenant", json!({"a": 1}))],
            "claims.tenant",
        ),
        (
            "uppercase claim header",
            vec![Set("/claim_headers", json!({"X-Auth-Sub": "sub"}))],
            "claim_headers",
        ),
        (
            "reserved claim header",
            vec![Set("/claim_headers", json!({"authorization": "sub"}))],
            "claim_headers.authorization",
        ),
        (
            "empty claim name",
            vec![Set("/claim_headers", json!({"x-auth-sub": ""}))],
            "claim_headers.x-auth-sub",
        ),
        (
            "separator with a control character",
            vec![Set("/claim_header_separator", json!("\n"))],
            "claim_header_separator",
        ),
        (
            "realm with a quote",
            vec![Set("/realm", json!("a\"b"))],
            "realm",
        ),
        ("empty realm", vec![Set("/realm", json!(""))], "realm"),
        (
            "short client secret",
            vec![Set("/idp_client/client_secret", json!("short"))],
            "idp_client.client_secret",
        ),
        (
            "client id with a colon",
            vec![Set("/idp_client/client_id", json!("a:b"))],
            "idp_client.client_id",
        ),
        (
            "reserved secret header",
            vec![Set("/logout/resource_server/secret_header", json!("host"))],
            "secret_header",
        ),
        (
            "uppercase secret header",
            vec![Set(
                "/logout/resource_server/secret_header",
                json!("X-Secret"),
            )],
            "secret_header",
        ),
        (
            "short resource server secret",
            vec![Set("/logout/resource_server/secret", json!("0123456789"))],
            "resource_server.secret",
        ),
        (
            "no hub issuer",
            vec![Set("/hub/issuers", json!([]))],
            "hub.issuers",
        ),
        (
            "feed and hub without idp_client",
            vec![Remove("/idp_client")],
            "idp_client",
        ),
        (
            "back-channel logout without audiences",
            vec![Remove("/providers/0/backchannel_logout_audiences")],
            "backchannel_logout",
        ),
        (
            "back-channel audience with a space",
            vec![Set(
                "/providers/0/backchannel_logout_audiences",
                json!(["gateway "]),
            )],
            "backchannel_logout_audiences",
        ),
        (
            "a provider's revoke without logout",
            vec![Remove("/logout")],
            "providers[1].revoke",
        ),
        (
            "logout without a revocation endpoint",
            vec![Remove("/logout/revoke"), Remove("/providers/1/revoke")],
            "no provider has a revocation endpoint",
        ),
        (
            "provider without keys",
            vec![Remove("/providers/0/jwks")],
            "needs a jwks source",
        ),
        (
            "jwks and discovery",
            vec![Set(
                "/providers/1/jwks",
                json!({"cluster": "op", "path": "/jwks"}),
            )],
            "discovery",
        ),
        (
            "introspection of JWTs without keys",
            vec![
                Remove("/providers/1/discovery"),
                Set("/providers/1/introspection/introspect", json!("always")),
            ],
            "needs a jwks source",
        ),
        (
            "token source with two places",
            vec![Set("/providers/0/token_sources/1/query", json!("at"))],
            "name exactly one",
        ),
        (
            "cookie with a prefix",
            vec![Set("/providers/0/token_sources/1/prefix", json!("x"))],
            "name exactly one",
        ),
        (
            "token source naming nothing",
            vec![Set("/providers/0/token_sources/1", json!({}))],
            "name exactly one",
        ),
        (
            "bad query name",
            vec![Set("/providers/0/token_sources/1", json!({"query": "a b"}))],
            "name exactly one",
        ),
        (
            "no token source",
            vec![Set("/providers/0/token_sources", json!([]))],
            "token_sources",
        ),
        (
            "htu base with a path",
            vec![Set(
                "/providers/0/dpop_htu_base",
                json!("https://api.example.com/x"),
            )],
            "dpop_htu_base",
        ),
        (
            "htu base not http",
            vec![Set(
                "/providers/0/dpop_htu_base",
                json!("ftp://api.example.com"),
            )],
            "dpop_htu_base",
        ),
        (
            "inline JWKS a number",
            vec![Set("/providers/0/inline_jwks", json!(7))],
            "inline_jwks",
        ),
        (
            "discovery origin with a path",
            vec![Set(
                "/providers/1/discovery/origins",
                json!({"https://a.example/x": "a"}),
            )],
            "origins",
        ),
        (
            "discovery origin cluster with a space",
            vec![Set(
                "/providers/1/discovery/origins",
                json!({"https://a.example": "a b"}),
            )],
            "origins",
        ),
    ]
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
    for (case, edits, parser_says) in bad_cases() {
        let mut config = full_config();
        edits.iter().for_each(|e| e.apply(&mut config));
        match FilterConfig::from_json(config.to_string().as_bytes()) {
            Ok(_) => failures.push(format!("{case}: the parser accepts it")),
            Err(e) if !e.to_string().contains(parser_says) => failures.push(format!(
                "{case}: the parser refuses it for another reason: {e} (expected {parser_says:?})"
            )),
            Err(_) => {}
        }
        // The schema refuses it at the edited place or above it (a rule about the object
        // holding it, or a cross-field rule of the configuration).
        let errors: Vec<(String, String)> = checker
            .schema_errors_with_paths(&config)
            .into_iter()
            .collect();
        let edited = edits[0].pointer();
        if errors.is_empty() {
            failures.push(format!("{case}: the schema accepts it"));
        } else if !errors.iter().any(|(path, _)| {
            // At the edited value, inside it (an element of a list set whole), or above it.
            path.is_empty()
                || edited == path
                || edited.starts_with(&format!("{path}/"))
                || path.starts_with(&format!("{edited}/"))
        }) {
            failures.push(format!(
                "{case}: the schema refuses it elsewhere: {errors:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Defaults: every `default` of the schema is the parser's

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

// ---------------------------------------------------------------------------------------------
// The WasmPlugin schema and docs/config-schema.md

#[test]
fn the_wasmplugin_schema_checks_the_plugin_config_of_a_whole_wasmplugin() {
    let validator = jsonschema::draft7::new(&wasmplugin_schema()).unwrap();
    let text = read("envoy/istio/wasmplugin.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let plugin = docs
        .into_iter()
        .find(|d| d["kind"] == "WasmPlugin")
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&plugin)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut bad = plugin.clone();
    bad["spec"]["pluginConfig"]["providers"][0]["jwks"]["refresh_second"] = json!(300);
    assert!(!validator.is_valid(&bad));
    let mut bad = plugin;
    bad["spec"]["pluginConfig"]["rules"][0]["action"] = json!("skip");
    assert!(!validator.is_valid(&bad));
}

fn page() -> String {
    read("docs/config-schema.md")
}

/// The `cargo run -p config-schema -- ARGS` lines of the page's shell blocks, as ARGS.
fn documented_commands() -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut in_shell = false;
    for line in page().lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_shell = !in_shell && (trimmed == "```sh" || trimmed == "```bash");
            continue;
        }
        if in_shell && let Some(args) = trimmed.strip_prefix("cargo run -p config-schema -- ") {
            commands.push(args.split_whitespace().map(str::to_owned).collect());
        }
    }
    commands
}

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_config-schema"))
}

#[test]
fn the_documented_generator_command_writes_the_checked_in_schemas() {
    let commands = documented_commands();
    let write: Vec<_> = commands.iter().filter(|c| c[0] == "write").collect();
    assert_eq!(
        write,
        [&vec!["write".to_owned()]],
        "the page shows `{REGENERATE}`"
    );
    assert!(page().contains(REGENERATE));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    let out = tool()
        .args(write[0])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for path in [SCHEMA_PATH, WASMPLUGIN_SCHEMA_PATH] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(path)).unwrap(),
            read(path),
            "{path}: regenerate with `{REGENERATE}`"
        );
    }
    // Elsewhere than the repository root it refuses to write.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = tool()
        .arg("write")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("repository root"));
}

#[test]
fn the_documented_check_commands_pass_on_the_shipped_files() {
    let checks: Vec<_> = documented_commands()
        .into_iter()
        .filter(|c| c[0] == "check")
        .collect();
    assert!(!checks.is_empty(), "the page shows no check command");
    for args in checks {
        let out = tool().args(&args).current_dir(root()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(": valid"), "{args:?}: {stdout}");
    }
}

#[test]
fn the_check_command_fails_on_a_bad_plugin_config_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = read("envoy/istio/wasmplugin.yaml");
    assert!(good.contains("refresh_seconds: 300"));
    let cases = [
        // A typo: both the schema and the filter refuse it.
        (
            good.replace("refresh_seconds: 300", "refresh_second: 300"),
            "refresh_second",
        ),
        // Out of range.
        (good.replace("poll_ms: 500", "poll_ms: 5"), "poll_ms"),
    ];
    for (i, (text, named)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&path, text).unwrap();
        let out = tool().arg("check").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("INVALID") && stderr.contains("schema:") && stderr.contains("filter:"),
            "{stderr}"
        );
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
    // A YAML file without a WasmPlugin is not a pass.
    let path = dir.path().join("other.yaml");
    std::fs::write(&path, "kind: Service\nmetadata: {name: x}\n").unwrap();
    let out = tool().arg("check").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no WasmPlugin"));
    // A JSON file is one filter configuration.
    let path = dir.path().join("filter.json");
    std::fs::write(&path, full_config().to_string()).unwrap();
    let out = tool().arg("check").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_editor_settings_of_the_page_point_at_the_schemas() {
    let page = page();
    // The modeline shown for envoy/istio/wasmplugin.yaml: relative to that file.
    let modeline = page
        .lines()
        .find_map(|l| l.trim().strip_prefix("# yaml-language-server: $schema="))
        .expect("the page shows a yaml-language-server modeline");
    let target = root()
        .join("envoy/istio")
        .join(modeline)
        .canonicalize()
        .unwrap();
    assert_eq!(target, root().join(WASMPLUGIN_SCHEMA_PATH));
    // The VS Code settings block: paths relative to the workspace folder.
    let settings = page
        .split("```jsonc\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the page shows VS Code settings in a jsonc block");
    let settings: Value = serde_json::from_str(settings).unwrap();
    let json_urls: Vec<&str> = settings["json.schemas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    let yaml_urls: Vec<&String> = settings["yaml.schemas"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert!(
        json_urls.contains(&"./docs/filter-config.schema.json"),
        "{json_urls:?}"
    );
    assert!(
        yaml_urls
            .iter()
            .any(|u| *u == "./docs/wasmplugin.schema.json"),
        "{yaml_urls:?}"
    );
    for url in json_urls
        .into_iter()
        .chain(yaml_urls.iter().map(|u| u.as_str()))
    {
        assert!(root().join(url).is_file(), "{url}");
    }
    for globs in settings["yaml.schemas"].as_object().unwrap().values() {
        for glob in globs.as_array().unwrap() {
            let glob = glob.as_str().unwrap();
            if !glob.contains('*') {
                assert!(root().join(glob).is_file(), "{glob}");
            }
        }
    }
}
