//! The JSON Schema of the filter configuration, derived from the filter's raw configuration types
//! (`filter::config::RawConfig` and what it holds, with the `schema` feature), and a check of
//! configuration files against both that schema and the filter's own parser.
//!
//! `cargo run -p config-schema -- write` (from the repository root) writes [`SCHEMA_PATH`] and
//! [`WASMPLUGIN_SCHEMA_PATH`]; `cargo run -p config-schema -- check FILE...` checks files.

use filter::config::{FilterConfig, RawConfig};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};
use std::path::Path;

/// The schema of the filter configuration, relative to the repository root.
pub const SCHEMA_PATH: &str = "docs/filter-config.schema.json";
/// The schema of an Istio `WasmPlugin` whose `spec.pluginConfig` is a filter configuration.
pub const WASMPLUGIN_SCHEMA_PATH: &str = "docs/wasmplugin.schema.json";
/// The command that writes both schemas (run from the repository root).
pub const REGENERATE: &str = "cargo run -p config-schema -- write";

/// The filter configuration's schema (JSON Schema draft-07, which editors' YAML and JSON
/// language servers support).
pub fn filter_schema() -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<RawConfig>().to_value();
    drop_null_defaults(&mut schema);
    schema
}

/// schemars writes `"default": null` for an optional key with no default of its own (serde's
/// `Option::default()`); absent is what that means, and an editor would offer to write `null`.
fn drop_null_defaults(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            map.values_mut().for_each(drop_null_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_defaults),
        _ => {}
    }
}

/// A schema for a whole `WasmPlugin` document: its `spec.pluginConfig` must be a filter
/// configuration; the rest of the resource is left to Istio (any other member is allowed).
pub fn wasmplugin_schema() -> Value {
    let mut filter = filter_schema();
    let mut definitions = match filter.get_mut("definitions").map(Value::take) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if let Some(root) = filter.as_object_mut() {
        root.remove("$schema");
        root.remove("definitions");
    }
    definitions.insert("FilterConfig".to_owned(), filter);
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Istio WasmPlugin running the oauth2-gateway filter",
        "description": format!(
            "Checks spec.pluginConfig against the filter configuration ({SCHEMA_PATH}); the \
             other members of the WasmPlugin are Istio's and are not checked here."
        ),
        "type": "object",
        "required": ["kind", "spec"],
        "properties": {
            "kind": {"const": "WasmPlugin"},
            "spec": {
                "type": "object",
                "required": ["pluginConfig"],
                "properties": {"pluginConfig": {"$ref": "#/definitions/FilterConfig"}}
            }
        },
        "definitions": definitions
    })
}

/// A schema as written to its file: pretty-printed, with a final newline.
pub fn to_text(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes both schemas under `root` (the repository root), which must have a `docs/` folder.
pub fn write(root: &Path) -> Result<Vec<String>, String> {
    let docs = root.join("docs");
    if !docs.is_dir() {
        return Err(format!(
            "no docs/ folder in {}: run `{REGENERATE}` from the repository root",
            root.display()
        ));
    }
    let mut written = Vec::new();
    for (path, schema) in [
        (SCHEMA_PATH, filter_schema()),
        (WASMPLUGIN_SCHEMA_PATH, wasmplugin_schema()),
    ] {
        std::fs::write(root.join(path), to_text(&schema)).map_err(|e| format!("{path}: {e}"))?;
        written.push(path.to_owned());
    }
    Ok(written)
}

/// A validator of filter configurations.
pub struct Checker {
    schema: jsonschema::Validator,
}

impl Checker {
    pub fn new() -> Result<Self, String> {
        let schema = jsonschema::draft7::new(&filter_schema())
            .map_err(|e| format!("the generated schema does not compile: {e}"))?;
        Ok(Checker { schema })
    }

    /// Where `config` breaks the schema (`/json/pointer: message`); empty: it validates.
    pub fn schema_errors(&self, config: &Value) -> Vec<String> {
        self.schema_errors_with_paths(config)
            .into_iter()
            .map(|(path, message)| format!("{}: {message}", display_pointer(&path)))
            .collect()
    }

    /// The schema's errors as (JSON pointer of the offending value, message).
    pub fn schema_errors_with_paths(&self, config: &Value) -> Vec<(String, String)> {
        self.schema
            .iter_errors(config)
            .map(|e| (e.instance_path().to_string(), e.to_string()))
            .collect()
    }

    /// The schema's errors and the parser's (`FilterConfig::from_json`), one line each.
    pub fn problems(&self, config: &Value) -> Vec<String> {
        let mut problems: Vec<String> = self
            .schema_errors(config)
            .into_iter()
            .map(|e| format!("schema: {e}"))
            .collect();
        if let Err(e) = FilterConfig::from_json(config.to_string().as_bytes()) {
            problems.push(format!("filter: {e}"));
        }
        problems
    }
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

/// The filter configurations a file holds, each with a label: a `.json` file is one
/// configuration; a `.yaml`/`.yml` file holds `WasmPlugin` documents, whose `spec.pluginConfig`
/// are. A YAML file without a `WasmPlugin` is an error (a CI check must not pass on nothing).
pub fn configs_in(path: &Path, text: &str) -> Result<Vec<(String, Value)>, String> {
    let name = path.display().to_string();
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => {
            let config = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
            Ok(vec![(name, config)])
        }
        Some("yaml" | "yml") => {
            let docs: Vec<Value> =
                serde_saphyr::from_multiple(text).map_err(|e| format!("{name}: {e}"))?;
            let mut configs = Vec::new();
            for doc in docs.iter().filter(|d| d["kind"] == "WasmPlugin") {
                let plugin = doc["metadata"]["name"].as_str().unwrap_or("(unnamed)");
                let label = format!("{name}: WasmPlugin {plugin}");
                match doc["spec"].get("pluginConfig") {
                    Some(config) => configs.push((label, config.clone())),
                    None => return Err(format!("{label}: no spec.pluginConfig")),
                }
            }
            if configs.is_empty() {
                return Err(format!("{name}: no WasmPlugin document"));
            }
            Ok(configs)
        }
        _ => Err(format!(
            "{name}: expected a .json filter configuration or a .yaml WasmPlugin"
        )),
    }
}

/// Checks every configuration of every file; the report has one line per configuration (and
/// one per problem), and is `Err` when anything is wrong.
pub fn check(paths: &[String]) -> Result<String, String> {
    if paths.is_empty() {
        return Err(
            "usage: config-schema check FILE... (.json configurations, .yaml WasmPlugins)".into(),
        );
    }
    let checker = Checker::new()?;
    let mut report = String::new();
    let mut failed = false;
    for path in paths {
        let path = Path::new(path);
        let configs = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|text| configs_in(path, &text));
        let configs = match configs {
            Ok(configs) => configs,
            Err(e) => {
                failed = true;
                report.push_str(&format!("{e}\n"));
                continue;
            }
        };
        for (label, config) in configs {
            let problems = checker.problems(&config);
            if problems.is_empty() {
                report.push_str(&format!("{label}: valid\n"));
            } else {
                failed = true;
                report.push_str(&format!("{label}: INVALID\n"));
                for p in problems {
                    report.push_str(&format!("  {p}\n"));
                }
            }
        }
    }
    if failed { Err(report) } else { Ok(report) }
}
