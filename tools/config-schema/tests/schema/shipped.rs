//! Every filter configuration the project ships validates against the schema and is accepted
//! by the parser; the scenarios whose configuration must be refused are refused by both.

use crate::{files, relative, root};
use config_schema::Checker;
use filter::config::FilterConfig;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

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
