//! Which build of the filter a scenario's Envoy loads: the Wasm module (V8) or the native dynamic
//! module (`liboauth2_gateway.so`), with what each needs from Envoy (filter config, environment,
//! the prefix Envoy gives the filter's counters).

use super::Observed;
use crate::artifacts;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The dynamic module's name: Envoy loads `lib<NAME>.so`.
pub const NATIVE_MODULE_NAME: &str = "oauth2_gateway";
/// Where Envoy looks for dynamic modules.
pub const SEARCH_PATH_VAR: &str = "ENVOY_DYNAMIC_MODULES_SEARCH_PATH";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Module {
    /// The Wasm module's file.
    Wasm(PathBuf),
    /// The directory holding `liboauth2_gateway.so`.
    Native(PathBuf),
}

/// The directory of the native module as `scripts/lib/common.sh` builds it
/// (`target/native-release`), or `$GATEWAY_NATIVE_MODULE_DIR`.
pub fn native_module_dir() -> Result<PathBuf, String> {
    let dir = std::env::var_os("GATEWAY_NATIVE_MODULE_DIR").map_or_else(
        || artifacts::workspace_root().join("target/native-release"),
        PathBuf::from,
    );
    let so = dir.join(format!("lib{NATIVE_MODULE_NAME}.so"));
    if so.is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "{} not found (set GATEWAY_NATIVE_MODULE_DIR or run `cargo build --profile \
             native-release -p filter-native`, or use scripts/test)",
            so.display()
        ))
    }
}

impl Module {
    /// The HTTP filter entry of the bootstrap, with `config` (the filter's JSON configuration).
    pub fn http_filter(&self, config: &str) -> Value {
        let configuration = json!({
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": config
        });
        match self {
            Module::Wasm(wasm) => json!({"name": "envoy.filters.http.wasm", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "oauth2_gateway",
                    "root_id": "oauth2_gateway",
                    "fail_open": false,
                    "vm_config": {
                        "vm_id": "oauth2_gateway",
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": wasm.display().to_string()}}
                    },
                    "configuration": configuration
                }
            }}),
            Module::Native(_) => json!({"name": "oauth2_gateway", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                "dynamic_module_config": {"name": NATIVE_MODULE_NAME},
                "filter_name": "oauth2_gateway",
                "filter_config": configuration
            }}),
        }
    }

    /// What Envoy's process needs to load the module.
    pub fn prepare(&self, cmd: &mut Command) {
        if let Module::Native(dir) = self {
            cmd.env(SEARCH_PATH_VAR, dir);
        }
    }

    /// The prefix Envoy's `/stats` puts before the filter's counter names.
    pub fn stats_prefix(&self) -> &'static str {
        match self {
            Module::Wasm(_) => "wasmcustom.",
            Module::Native(_) => "dynamicmodulescustom.",
        }
    }

    /// `envoy --mode validate` with the module loadable; `Err` with the log when Envoy refuses.
    pub fn validate(&self, config: &Path) -> Result<String, String> {
        let mut cmd = Command::new(artifacts::envoy_bin()?);
        cmd.args([
            "--mode",
            "validate",
            "--use-dynamic-base-id",
            "-l",
            "info",
            "-c",
        ])
        .arg(config);
        self.prepare(&mut cmd);
        let out = cmd.output().map_err(|e| format!("cannot run envoy: {e}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }
}

/// Upstream headers Envoy itself makes up per request (never the filter).
/// Headers Envoy makes up per request or per instance: the request id, and `host` (the
/// authority the runner sent, each Envoy's own listener port; no filter sets it).
const PER_REQUEST_HEADERS: &[&str] = &["x-request-id", "host"];

/// Where the Wasm module and the native module, each on a real Envoy, saw a request differently:
/// [`super::differences`] with the Wasm observation in the harness's place, minus what Envoy
/// makes up per request. Empty when they agree.
pub fn differences_between_modules(wasm: &Observed, native: &Observed) -> Vec<String> {
    let strip = |o: &Observed| {
        let mut o = o.clone();
        if let Some(h) = o.upstream_headers.as_mut() {
            h.retain(|(k, _)| !PER_REQUEST_HEADERS.contains(&k.to_ascii_lowercase().as_str()));
        }
        o
    };
    super::differences(&strip(wasm), &strip(native))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn modules_differ_only_where_the_filter_did() {
        let wasm = Observed {
            status: Some(200),
            forwarded: true,
            upstream_headers: Some(vec![
                ("x-request-id".into(), "a".into()),
                ("x-auth-sub".into(), "alice".into()),
            ]),
            ..Observed::default()
        };
        let mut native = wasm.clone();
        native.upstream_headers = Some(vec![
            ("x-request-id".into(), "b".into()),
            ("x-auth-sub".into(), "alice".into()),
        ]);
        assert_eq!(
            differences_between_modules(&wasm, &native),
            Vec::<String>::new()
        );
        native.upstream_headers = Some(vec![("x-request-id".into(), "b".into())]);
        let found = differences_between_modules(&wasm, &native);
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn the_native_filter_names_the_module_and_passes_the_config_as_a_string() {
        let filter = Module::Native(PathBuf::from("/x")).http_filter("{\"a\":1}");
        assert_eq!(
            filter["typed_config"]["dynamic_module_config"]["name"],
            "oauth2_gateway"
        );
        assert_eq!(
            filter["typed_config"]["filter_config"]["value"],
            "{\"a\":1}"
        );
    }
}
