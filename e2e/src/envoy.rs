//! Rendering the Envoy config templates in `envoy/` and validating them with the real Envoy.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Fills `${NAME}` placeholders; every placeholder must have a value.
pub fn render(template: &str, values: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("unterminated placeholder")?;
        let name = &after[..end];
        let value = values
            .get(name)
            .ok_or_else(|| format!("no value for ${{{name}}}"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Runs `envoy --mode validate`; returns its combined output, `Err` with it when Envoy refuses.
pub fn validate(envoy: &Path, config: &Path) -> Result<String, String> {
    let mut cmd = Command::new(envoy);
    // Configs with the native module (envoy/envoy-native.yaml) need to find liboauth2_gateway.so.
    if std::env::var_os(crate::scenario_runner::module::SEARCH_PATH_VAR).is_none()
        && let Ok(dir) = crate::scenario_runner::native_module_dir()
    {
        cmd.env(crate::scenario_runner::module::SEARCH_PATH_VAR, dir);
    }
    let out = cmd
        .args([
            "--mode",
            "validate",
            "--use-dynamic-base-id",
            "-l",
            "info",
            "-c",
        ])
        .arg(config)
        .output()
        .map_err(|e| format!("cannot run envoy: {e}"))?;
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
