//! The JSON Schema of the filter configuration (docs/filter-config.schema.json): fresh, accepted
//! by every configuration the project ships, refusing what the parser refuses, with the
//! parser's defaults, and the commands of docs/config-schema.md doing what the page says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod bad_configs;
mod defaults;
mod docs_page;
mod shipped;

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

pub fn files(dir: &str, extension: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    paths.sort();
    paths
}

pub fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// The tool as built for this test (`cargo run -p config-schema -- ARGS` runs the same binary).
pub fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_config-schema"))
}
