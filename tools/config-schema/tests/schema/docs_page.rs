//! The checked-in schemas are fresh and valid draft-07 schemas; the WasmPlugin schema checks a
//! whole WasmPlugin; the commands and editor settings of docs/config-schema.md work as shown.

use crate::bad_configs::full_config;
use crate::{read, root, tool};
use config_schema::{
    REGENERATE, SCHEMA_PATH, WASMPLUGIN_SCHEMA_PATH, filter_schema, to_text, wasmplugin_schema,
};
use serde_json::{Value, json};

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
