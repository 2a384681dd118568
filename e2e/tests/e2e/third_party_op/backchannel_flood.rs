//! 5. A flood of bogus logout tokens (the OP's issuer and kid, another key) beside API traffic:
//!    every API request passes, the signature checks stay within their budget (latency printed, not
//!    asserted).

use super::{Setup, form, logout_claims, post_raw, test_key, to_response, unique};
use e2e::client;
use e2e::oidc_provider::RESOURCE_ES256;
use e2e::third_party::Build;
use serde_json::json;
use std::time::{Duration, Instant};

const API_REQUESTS: usize = 2000;
const BOGUS_TOKENS: usize = 500;

/// `API_REQUESTS` GETs with `token` on one keep-alive connection: statuses and latencies.
fn api_run(url: &str, token: &str) -> (Vec<u16>, Vec<Duration>) {
    let agent = client::agent();
    let auth = format!("Bearer {token}");
    let mut statuses = Vec::with_capacity(API_REQUESTS);
    let mut latencies = Vec::with_capacity(API_REQUESTS);
    for _ in 0..API_REQUESTS {
        let t = Instant::now();
        let res = to_response(agent.get(url).header("authorization", &auth).call());
        latencies.push(t.elapsed());
        statuses.push(res.status);
    }
    (statuses, latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn summary(latencies: &[Duration]) -> (Duration, Duration) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    (percentile(&sorted, 0.50), percentile(&sorted, 0.99))
}

fn flood_of_bogus_logout_tokens(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind);
    let token = s.op.client_credentials(RESOURCE_ES256).unwrap();
    let api = format!("{}/api/hello", s.url);
    assert_eq!(s.hello(Some(&token)).status, 200);

    let quiet_started = Instant::now();
    let (quiet_statuses, quiet) = api_run(&api, &token);
    // the flood is spread over about as long as the API run takes, so that they overlap
    let pace = quiet_started.elapsed() / BOGUS_TOKENS as u32;
    assert!(
        quiet_statuses.iter().all(|&st| st == 200),
        "without the flood"
    );

    // bogus: the OP's issuer and ES256 kid, the right audience, a key that is not the OP's
    let op_kid = s.op_es256_kid();
    let forger = test_key();
    let issuer = s.op.issuer().to_owned();
    let bogus: Vec<String> = (0..BOGUS_TOKENS)
        .map(|_| {
            let mut claims = logout_claims(&unique("sid"));
            claims["iss"] = issuer.clone().into();
            forger.sign(
                &json!({"alg": "ES256", "typ": "logout+jwt", "kid": op_kid}),
                &claims,
            )
        })
        .collect();
    let backchannel = s.backchannel_url();
    let flood = std::thread::spawn(move || {
        // a short bound: a receiver that does not answer fails the test quickly
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(3)))
            .build()
            .into();
        let started = Instant::now();
        let statuses: Vec<u16> = bogus
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let due = started + pace * i as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                post_raw(
                    &agent,
                    &backchannel,
                    "application/x-www-form-urlencoded",
                    &form(t),
                )
                .status
            })
            .collect();
        (statuses, started.elapsed())
    });
    let api_started = Instant::now();
    let (flood_statuses_api, loaded) = api_run(&api, &token);
    let api_elapsed = api_started.elapsed();
    let (bogus_statuses, flood_elapsed) = flood.join().unwrap();

    let ok = flood_statuses_api.iter().filter(|&&st| st == 200).count();
    assert_eq!(
        ok,
        API_REQUESTS,
        "API requests during the flood: {:?}",
        flood_statuses_api
            .iter()
            .filter(|&&st| st != 200)
            .collect::<Vec<_>>()
    );
    let refused = bogus_statuses.iter().filter(|&&st| st == 400).count() as u64;
    let throttled = bogus_statuses.iter().filter(|&&st| st == 429).count() as u64;
    assert_eq!(
        refused + throttled,
        BOGUS_TOKENS as u64,
        "bogus logout tokens answered other than 400/429: {:?}",
        bogus_statuses
            .iter()
            .filter(|&&st| st != 400 && st != 429)
            .collect::<Vec<_>>()
    );
    assert!(refused >= 1, "no bogus token reached the signature check");
    // the per-worker budget (20 signature checks a second, 2 workers) bounds the 400s
    let budget = 20 * 2 * (flood_elapsed.as_secs() + 2);
    assert!(
        refused <= budget,
        "{refused} bogus tokens had their signature checked in {flood_elapsed:?} (budget {budget})"
    );
    assert_eq!(s.counter("backchannel_logout_ok"), 0);
    assert_eq!(s.counter("backchannel_logout_refused"), refused);
    assert_eq!(s.counter("backchannel_logout_throttled"), throttled);
    assert_eq!(s.hello(Some(&token)).status, 200, "after the flood");

    let (q50, q99) = summary(&quiet);
    let (l50, l99) = summary(&loaded);
    println!(
        "[{kind:?}] API latency, {API_REQUESTS} requests: without flood p50 {q50:?} p99 {q99:?}; \
         with flood p50 {l50:?} p99 {l99:?} (API run {api_elapsed:?}, flood of {BOGUS_TOKENS} \
         in {flood_elapsed:?}: {refused} × 400, {throttled} × 429)"
    );
}

#[test]
fn flood_of_bogus_logout_tokens_wasm() {
    flood_of_bogus_logout_tokens(Build::Wasm);
}

#[test]
fn flood_of_bogus_logout_tokens_native() {
    flood_of_bogus_logout_tokens(Build::Native);
}
