//! Two IDP replicas on one PostgreSQL, two gateways (real Envoy with filter.wasm, the local
//! stack's envoy/envoy.yaml), each with both replicas in its `idp` cluster, health-checked on
//! `/healthz`: gateway A prefers replica 1, gateway B replica 2 (priorities 0 and 1, the other
//! replica is the fail-over). A logout through gateway A revokes at replica 1; gateway B, whose
//! revocation feed is long-polled at replica 2, refuses the token once replica 2 is woken by
//! PostgreSQL's NOTIFY. Prints logout → first refusal on B over 20 logouts (p50/p99/max,
//! BENCHMARKS.md, "Logout propagation"); asserts only that every token is refused on B in the end.
//! Then replica 2 is killed (SIGKILL) in the middle of B's long poll: B's health check fails it
//! over to replica 1, and logouts through A are still refused on B.

use crate::idp_replicas::start_replica;
use e2e::artifacts;
use e2e::client;
use e2e::postgres::{PostgresCluster, SKIP_ENV, skip_requested};
use e2e::process::free_port;
use e2e::stack::{Gateway, password_login, start_resource_server};
use std::time::{Duration, Instant};

const RUNS: usize = 20;
/// Far more than any propagation takes; reaching it fails the test (no speed is asserted).
const BOUND: Duration = Duration::from_secs(10);

fn hello(gateway: &str, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    client::get(&format!("{gateway}/api/hello"), &[("authorization", &auth)])
        .map_or(0, |r| r.status)
}

/// envoy/envoy.yaml with both replicas in the `idp` cluster: `${IDP_PORT}` (this gateway's
/// preferred replica) at priority 0, `other` at priority 1, both health-checked every second (two
/// failed checks in a row take a replica out: one slow answer on a busy machine does not). Also
/// every second while the cluster has no routed traffic (`no_traffic_interval`, 60 s by default):
/// the filter's callouts do not count as traffic, so a check that timed out while Envoy was
/// compiling the Wasm module at start-up would otherwise keep both replicas "failed" for a
/// minute, and Envoy (in panic mode) would spread the callouts over both, dead or alive.
fn two_replica_template(other: u16) -> String {
    let path = artifacts::workspace_root().join("envoy/envoy.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let one = "    - name: idp
      type: STATIC
      connect_timeout: 2s
      load_assignment:
        cluster_name: idp
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: { address: 127.0.0.1, port_value: ${IDP_PORT} }
";
    let both = format!(
        "    - name: idp
      type: STATIC
      connect_timeout: 2s
      health_checks:
        - timeout: 2s
          interval: 1s
          no_traffic_interval: 1s
          unhealthy_threshold: 2
          healthy_threshold: 1
          http_health_check: {{ path: /healthz }}
      load_assignment:
        cluster_name: idp
        endpoints:
          - priority: 0
            lb_endpoints:
              - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: ${{IDP_PORT}} }} }} }}
          - priority: 1
            lb_endpoints:
              - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {other} }} }} }}
"
    );
    assert!(text.contains(one), "envoy.yaml's idp cluster changed");
    text.replace(one, &both)
}

/// Logs out `token` through A and waits until B refuses it; the time that took.
fn logout_until_refused_on(a: &Gateway, b: &Gateway, token: &str, run: usize) -> Duration {
    assert_eq!(hello(&a.url, token), 200, "run {run}: A accepts");
    assert_eq!(hello(&b.url, token), 200, "run {run}: B accepts");
    let auth = format!("Bearer {token}");
    let res = client::post_form(
        &format!("{}/oauth2/logout", a.url),
        &[("authorization", auth.as_str())],
        &[],
    )
    .unwrap();
    if res.status != 200 {
        let clusters = client::get(&format!("{}/clusters", a.admin_url), &[]).map(|r| r.body);
        panic!(
            "run {run}: logout through A: {} {}\nA's idp cluster: {clusters:?}\nA's log: {}",
            res.status,
            res.body,
            a.proc.log_tail()
        );
    }
    let logged_out = Instant::now();
    loop {
        if hello(&b.url, token) == 401 {
            return logged_out.elapsed();
        }
        assert!(
            logged_out.elapsed() < BOUND,
            "run {run}: B still accepts the token {BOUND:?} after the logout"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn logout_through_one_replica_is_refused_on_a_gateway_long_polling_the_other() {
    let _slot = crate::slot();
    if skip_requested() {
        eprintln!("PostgreSQL test skipped: {SKIP_ENV} is set");
        return;
    }
    let cluster = PostgresCluster::start().unwrap();
    let db = cluster.create_database("gateways").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (port_1, port_2) = (free_port().unwrap(), free_port().unwrap());
    // One issuer for the cluster (what a load balancer in front of the replicas would be).
    let issuer = format!("http://127.0.0.1:{port_1}");
    let _r1 = start_replica(dir.path(), "idp-1", port_1, &issuer, &db);
    let r2 = start_replica(dir.path(), "idp-2", port_2, &issuer, &db);
    let (_rs, rs_port) =
        start_resource_server(dir.path(), "resource-server", free_port().unwrap()).unwrap();
    let start = |name: &str, (preferred, other): (u16, u16)| {
        Gateway::start_text(
            &two_replica_template(other),
            dir.path(),
            name,
            (preferred, rs_port),
            &issuer,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let a = start("envoy-a", (port_1, port_2));
    let b = start("envoy-b", (port_2, port_1));

    let mut delays = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        let login = password_login(&format!("http://127.0.0.1:{port_1}")).unwrap();
        let token = login["access_token"].as_str().unwrap();
        delays.push(logout_until_refused_on(&a, &b, token, run));
    }
    delays.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "logout on A (replica 1) -> first refusal on B (long poll at replica 2), {RUNS} runs: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.99)),
        ms(delays[delays.len() - 1])
    );
    // For the report: B's answered polls over the run (held polls: about one per revocation).
    let polls = b.counter("oauth2gw.revocation_poll_ok").unwrap_or(0);
    println!("B's feed polls answered: {polls}");

    // Replica 2 dies while B's long poll is held there: B fails over to replica 1.
    let failures_before = b.counter("oauth2gw.revocation_poll_failed").unwrap_or(0);
    r2.signal("KILL").unwrap();
    let killed = Instant::now();
    let mut first_after_kill = None;
    for run in 0..5 {
        let login = password_login(&format!("http://127.0.0.1:{port_1}")).unwrap();
        let token = login["access_token"].as_str().unwrap();
        let delay = logout_until_refused_on(&a, &b, token, RUNS + run);
        first_after_kill.get_or_insert((killed.elapsed(), delay));
    }
    let (since_kill, since_logout) = first_after_kill.unwrap();
    let failures = b.counter("oauth2gw.revocation_poll_failed").unwrap_or(0) - failures_before;
    println!(
        "replica 2 killed: B refused the next 5 logged-out tokens, the first {:.0} ms after the \
         kill ({:.1} ms after its logout); B's failed polls since: {failures}",
        ms(since_kill),
        ms(since_logout)
    );
}
