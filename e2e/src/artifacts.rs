//! Where the binaries under test are.

use std::path::{Path, PathBuf};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn locate(var: &str, default: PathBuf, how: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os(var).map_or(default, PathBuf::from);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} not found (set {var} or {how})", path.display()))
    }
}

fn profile_dir() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

pub fn idp_bin() -> Result<PathBuf, String> {
    let default = workspace_root()
        .join("target")
        .join(profile_dir())
        .join("idp");
    locate(
        "IDP_BIN",
        default,
        "run `cargo build -p idp`, or use scripts/test",
    )
}

pub fn resource_server_bin() -> Result<PathBuf, String> {
    let default = workspace_root()
        .join("target")
        .join(profile_dir())
        .join("resource-server");
    locate(
        "RS_BIN",
        default,
        "run `cargo build -p resource-server`, or use scripts/test",
    )
}

pub fn filter_wasm() -> Result<PathBuf, String> {
    // As scripts/lib/common.sh builds it: wasm-opt'ed when binaryen is there.
    let dir = workspace_root().join("target/wasm32-wasip1/wasm-release");
    let optimised = dir.join("filter.opt.wasm");
    let plain = dir.join("filter.wasm");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // A stale optimised copy (older than the build) is not used.
    let default = match (modified(&optimised), modified(&plain)) {
        (Some(o), Some(p)) if o >= p => optimised,
        (Some(_), None) => optimised,
        _ => plain,
    };
    locate(
        "FILTER_WASM",
        default,
        "run `cargo build --profile wasm-release --target wasm32-wasip1 -p filter`, or use scripts/test",
    )
}

/// The real Envoy binary installed by the scripts into `.venv` (not the Python shim).
pub fn envoy_bin() -> Result<PathBuf, String> {
    let venv = workspace_root().join(".venv/lib");
    let default = std::fs::read_dir(&venv)
        .ok()
        .and_then(|mut entries| {
            entries.find_map(|e| {
                let p = e.ok()?.path().join("site-packages/envoy/_bin/envoy");
                p.is_file().then_some(p)
            })
        })
        .unwrap_or_else(|| venv.join("python3/site-packages/envoy/_bin/envoy"));
    locate(
        "ENVOY_BIN",
        default,
        "run scripts/test, which installs Envoy into .venv",
    )
}
