//! Benchmark (ignored by default; not a timed test): how long after a logout on gateway A the
//! revoked token is first refused by gateway B, over repeated logouts. Run with
//!   cargo test -p e2e --test e2e -- propagation:: --ignored --nocapture
//! (after scripts/test or `scripts/lib/common.sh`'s build; `PROPAGATION_RUNS=100` for a p99 that
//! is not the maximum, 20 logouts by default). Figures go to BENCHMARKS.md.

use e2e::client;
use e2e::stack::{DEMO_CLIENT, Stack, StackOptions};
use std::time::{Duration, Instant};

/// Logouts measured unless `PROPAGATION_RUNS` says otherwise.
const RUNS: usize = 20;

#[test]
#[ignore = "benchmark: run explicitly"]
fn logout_propagation_to_another_gateway() {
    let _slot = crate::slot();
    let stack = Stack::start(StackOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let b = stack
        .another_gateway("envoy-b")
        .unwrap_or_else(|e| panic!("{e}"));
    let runs = std::env::var("PROPAGATION_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=1000).contains(n))
        .unwrap_or(RUNS);
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let token = stack.token(DEMO_CLIENT, None).unwrap();
        let auth = format!("Bearer {token}");
        let hello = |url: &str| {
            client::get(&format!("{url}/api/hello"), &[("authorization", &auth)])
                .unwrap()
                .status
        };
        assert_eq!(hello(&b.url), 200);
        let res = client::post_form(
            &format!("{}/oauth2/logout", stack.gateway_url),
            &[("authorization", &auth)],
            &[],
        )
        .unwrap();
        assert_eq!(res.status, 200, "{}", res.body);
        let start = Instant::now();
        while hello(&b.url) != 401 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no propagation within 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    let at = |q: f64| ms(samples[((runs as f64 * q).ceil() as usize).clamp(1, runs) - 1]);
    println!(
        "logout on A -> first refusal on B over {runs} runs (B polled every 5 ms): min {:.0} ms, median {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms(samples[0]),
        at(0.5),
        at(0.9),
        at(0.99),
        ms(samples[runs - 1])
    );
}
