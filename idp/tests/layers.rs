//! The layers of `idp/src` (see `src/lib.rs`): each top-level module may use only the layers
//! below it, so there are no import cycles between them. Checked on the source text: every
//! `crate::LAYER` path outside comments.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeSet;
use std::path::Path;

/// What each layer may use besides itself.
const ALLOWED: &[(&str, &[&str])] = &[
    ("settings", &[]),
    ("store", &[]),
    ("oauth", &["settings", "store"]),
    ("federation", &["settings", "store"]),
    ("backchannel_sender", &["oauth", "settings", "store"]),
    ("ssf", &["backchannel_sender", "oauth", "settings", "store"]),
    (
        "delivery",
        &["backchannel_sender", "oauth", "settings", "ssf", "store"],
    ),
    (
        "http",
        &[
            "backchannel_sender",
            "delivery",
            "federation",
            "oauth",
            "settings",
            "ssf",
            "store",
        ],
    ),
    (
        "cli",
        &[
            "delivery",
            "federation",
            "http",
            "oauth",
            "settings",
            "ssf",
            "store",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layers a file's code (not its comments) names as `crate::LAYER`.
fn layers_used(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    used
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (layer, allowed) in ALLOWED {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "src/{layer} has no Rust files");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in layers_used(&text) {
                if used != *layer && !allowed.contains(&used.as_str()) {
                    violations.push(format!("{} uses crate::{used}", file.display()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_check_sees_a_violation() {
    let used = layers_used("use crate::http::state::AppState; // crate::cli in a comment");
    assert_eq!(used, BTreeSet::from(["http".to_owned()]));
}
