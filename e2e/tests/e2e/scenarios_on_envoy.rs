//! Every scenario file of host-test (`host-test/scenarios/*.json`) on real Envoy: the same files,
//! the same expectations as `cargo test -p host-test --test scenarios`, none skipped. Each
//! scenario also runs in the harness with the same module, and every request must have been seen
//! alike by both (status, forwarded or not, the local reply's headers and body, the headers the
//! upstream got) — also where the scenario expects nothing: a difference is a harness bug (or a
//! filter bug) to find.

use e2e::artifacts;
use e2e::scenario_runner::{self, Passed};
use host_test::{Host, Scenario};
use std::time::Instant;

#[test]
fn every_scenario_passes_on_envoy() {
    let _slot = crate::slot();
    let wasm = artifacts::filter_wasm().unwrap();
    let scenarios = Scenario::load_dir(&scenario_runner::scenario_dir()).unwrap();
    assert!(scenarios.len() >= 10, "{} scenarios", scenarios.len());
    let host = Host::from_bytes(&std::fs::read(&wasm).unwrap(), "filter.wasm").unwrap();
    let started = Instant::now();
    let (mut passed, mut failures) = (Vec::new(), Vec::new());
    for (file, scenario) in &scenarios {
        match scenario_runner::run(scenario, &wasm) {
            Ok(Passed {
                requests,
                elapsed,
                observed,
            }) => {
                println!("ok    {file} ({requests} requests, {elapsed:.2?})");
                let harness = match scenario.run(&host) {
                    Ok(report) => report.observed,
                    Err(e) => {
                        failures.push(format!(
                            "{file}: passes on Envoy, fails in the harness: {e}"
                        ));
                        continue;
                    }
                };
                let differences: Vec<String> = harness
                    .iter()
                    .zip(&observed)
                    .enumerate()
                    .flat_map(|(i, (h, e))| {
                        scenario_runner::differences(h, e)
                            .into_iter()
                            .map(move |d| format!("request {}: {d}", i + 1))
                    })
                    .collect();
                if harness.len() != observed.len() {
                    failures.push(format!(
                        "{file}: {} requests in the harness, {} on Envoy",
                        harness.len(),
                        observed.len()
                    ));
                } else if !differences.is_empty() {
                    failures.push(format!(
                        "{file}: the harness and Envoy disagree:\n{}",
                        differences.join("\n")
                    ));
                } else {
                    passed.push(file.clone());
                }
            }
            Err(e) => {
                println!("FAIL  {file}");
                failures.push(format!("{file} ({}): {e}", scenario.name));
            }
        }
    }
    println!(
        "{} scenarios on Envoy in {:.1?} ({} passed, {} failed)",
        scenarios.len(),
        started.elapsed(),
        passed.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    assert_eq!(passed.len(), scenarios.len());
}

#[test]
fn a_scenario_that_expects_the_wrong_thing_fails_on_envoy_with_the_step_and_the_difference() {
    let _slot = crate::slot();
    let wasm = artifacts::filter_wasm().unwrap();
    let path = scenario_runner::scenario_dir().join("01-valid-token-forwarded.json");
    let mut scenario = Scenario::from_file(&path).unwrap();
    let expect = scenario
        .steps
        .iter_mut()
        .find_map(|s| s.expect.as_mut())
        .unwrap();
    expect.status = Some(418);
    expect
        .upstream_headers
        .insert("x-auth-sub".into(), "bob".into());
    let error = scenario_runner::run(&scenario, &wasm).unwrap_err();
    assert!(error.contains("step 3 (GET /api/hello)"), "{error}");
    assert!(
        error.contains("status: expected 418, got Some(200)"),
        "{error}"
    );
    assert!(error.contains("x-auth-sub: expected \"bob\""), "{error}");
}
