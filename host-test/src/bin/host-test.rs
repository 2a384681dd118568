//! `host-test [--wasm FILE] SCENARIO.json|DIR…`: runs scenario files against a proxy-wasm module
//! in the harness (no Envoy, no Rust to write). Exit status 1 if any scenario fails.

use host_test::{Host, Scenario, filter_wasm_path};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn usage() -> ExitCode {
    eprintln!(
        "usage: host-test [--wasm FILE] SCENARIO.json|DIR…\n\
         runs scenario files (see host-test/scenarios/README.md) against FILE\n\
         (default: $FILTER_WASM or the workspace's release build of the filter)"
    );
    ExitCode::from(2)
}

fn scenarios(path: &Path) -> Result<Vec<(String, Scenario)>, String> {
    if path.is_dir() {
        Scenario::load_dir(path)
    } else {
        Scenario::from_file(path).map(|s| vec![(path.display().to_string(), s)])
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut wasm: Option<PathBuf> = None;
    let mut inputs = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--wasm" => match args.next() {
                Some(path) => wasm = Some(PathBuf::from(path)),
                None => return usage(),
            },
            "-h" | "--help" => return usage(),
            _ => inputs.push(PathBuf::from(arg)),
        }
    }
    if inputs.is_empty() {
        return usage();
    }
    let wasm = wasm.unwrap_or_else(filter_wasm_path);
    let host = match std::fs::read(&wasm)
        .map_err(|e| format!("{}: {e}", wasm.display()))
        .and_then(|bytes| {
            Host::from_bytes(&bytes, &wasm.display().to_string()).map_err(|e| e.to_string())
        }) {
        Ok(host) => host,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    let mut passed = 0;
    for input in &inputs {
        let loaded = match scenarios(input) {
            Ok(loaded) => loaded,
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
                continue;
            }
        };
        for (file, scenario) in loaded {
            let started = Instant::now();
            match scenario.run(&host) {
                Ok(report) => {
                    passed += 1;
                    println!(
                        "ok    {file}: {} ({} requests, {:?})",
                        scenario.name,
                        report.requests,
                        started.elapsed()
                    );
                }
                Err(e) => {
                    failed += 1;
                    println!("FAIL  {file}: {}\n{e}\n", scenario.name);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
