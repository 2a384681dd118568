//! Runs every scenario file in host-test/scenarios through the harness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use host_test::Scenario;
use std::path::Path;

#[test]
fn every_scenario_passes_in_the_harness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let scenarios = Scenario::load_dir(&dir).unwrap();
    assert!(scenarios.len() >= 10, "{} scenarios", scenarios.len());
    let host = support::host();
    let failures: Vec<String> = scenarios
        .iter()
        .filter_map(|(file, scenario)| {
            scenario
                .run(&host)
                .err()
                .map(|e| format!("{file} ({}): {e}", scenario.name))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn a_scenario_that_expects_the_wrong_thing_fails_with_the_step_and_the_difference() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut scenario = Scenario::from_file(&dir.join("01-valid-token-forwarded.json")).unwrap();
    let report = scenario.run(&support::host()).unwrap();
    assert_eq!(report.requests, 2);
    assert!(report.request_fuel > 0);

    let request = scenario
        .steps
        .iter_mut()
        .find_map(|s| s.expect.as_mut())
        .unwrap();
    request.status = Some(418);
    request
        .upstream_headers
        .insert("x-auth-sub".into(), "bob".into());
    let error = scenario.run(&support::host()).unwrap_err();
    assert!(error.contains("step 3 (GET /api/hello)"), "{error}");
    assert!(
        error.contains("status: expected 418, got Some(200)"),
        "{error}"
    );
    assert!(error.contains("x-auth-sub: expected \"bob\""), "{error}");
}
