//! Every scenario file of host-test (`host-test/scenarios/*.json`) on real Envoy with the NATIVE
//! dynamic module (`liboauth2_gateway.so`), and again with the Wasm module: each passes its own
//! expectations (statuses, headers, upstream calls, counters) with the native module, and the two
//! modules must have seen every request alike (status, forwarded or not, the local reply's headers
//! and body, the headers the upstream got) — also where the scenario expects nothing.

use e2e::artifacts;
use e2e::scenario_runner::{self, Module, Passed, differences_between_modules, native_module_dir};
use host_test::Scenario;
use std::time::Instant;

#[test]
fn every_scenario_passes_on_envoy_with_the_native_module_and_agrees_with_wasm() {
    let _slot = crate::slot();
    let native = Module::Native(native_module_dir().unwrap());
    let wasm = Module::Wasm(artifacts::filter_wasm().unwrap());
    let scenarios = Scenario::load_dir(&scenario_runner::scenario_dir()).unwrap();
    assert!(scenarios.len() >= 15, "{} scenarios", scenarios.len());
    let started = Instant::now();
    let (mut passed, mut failures) = (Vec::new(), Vec::new());
    for (file, scenario) in &scenarios {
        let on_native = match scenario_runner::run_module(scenario, &native) {
            Ok(Passed {
                requests,
                elapsed,
                observed,
            }) => {
                println!("ok    {file} native ({requests} requests, {elapsed:.2?})");
                observed
            }
            Err(e) => {
                println!("FAIL  {file} native");
                failures.push(format!(
                    "{file} ({}) with the native module: {e}",
                    scenario.name
                ));
                continue;
            }
        };
        let on_wasm = match scenario_runner::run_module(scenario, &wasm) {
            Ok(p) => p.observed,
            Err(e) => {
                failures.push(format!("{file}: passes native, fails with Wasm: {e}"));
                continue;
            }
        };
        if on_wasm.len() != on_native.len() {
            failures.push(format!(
                "{file}: {} requests with Wasm, {} native",
                on_wasm.len(),
                on_native.len()
            ));
            continue;
        }
        let differences: Vec<String> = on_wasm
            .iter()
            .zip(&on_native)
            .enumerate()
            .flat_map(|(i, (w, n))| {
                differences_between_modules(w, n)
                    .into_iter()
                    .map(move |d| format!("request {}: {d}", i + 1))
            })
            .collect();
        if differences.is_empty() {
            passed.push(file.clone());
        } else {
            failures.push(format!(
                "{file}: Wasm and native disagree (Wasm first):\n{}",
                differences.join("\n")
            ));
        }
    }
    println!(
        "{} scenarios on Envoy, native vs Wasm, in {:.1?} ({} passed, {} failed)",
        scenarios.len(),
        started.elapsed(),
        passed.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    assert_eq!(passed.len(), scenarios.len());
}

#[test]
fn a_scenario_that_expects_the_wrong_thing_fails_with_the_native_module_too() {
    let _slot = crate::slot();
    let native = Module::Native(native_module_dir().unwrap());
    let path = scenario_runner::scenario_dir().join("01-valid-token-forwarded.json");
    let mut scenario = Scenario::from_file(&path).unwrap();
    let expect = scenario
        .steps
        .iter_mut()
        .find_map(|s| s.expect.as_mut())
        .unwrap();
    expect.status = Some(418);
    let error = scenario_runner::run_module(&scenario, &native).unwrap_err();
    assert!(
        error.contains("status: expected 418, got Some(200)"),
        "{error}"
    );
}
