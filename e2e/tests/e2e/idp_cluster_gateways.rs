//! Two IDP replicas on one PostgreSQL, each behind its own gateway (real Envoy with filter.wasm,
//! the local stack's envoy/envoy.yaml): a logout through gateway A revokes at replica 1; gateway
//! B, whose revocation feed is long-polled at replica 2, refuses the token once replica 2 is woken
//! by PostgreSQL's NOTIFY. Prints logout → first refusal on B over 20 logouts (p50/p99/max,
//! BENCHMARKS.md, "Logout propagation"); asserts only that every token is refused on B in the end.

use e2e::artifacts;
use e2e::client;
use e2e::postgres::{PostgresCluster, SKIP_ENV, skip_requested};
use e2e::process::{Proc, free_port};
use e2e::stack::{self, Gateway, StackOptions, password_login, start_resource_server};
use std::process::Command;
use std::time::{Duration, Instant};

const KEK: &str = "0808080808080808080808080808080808080808080808080808080808080808";
const RUNS: usize = 20;
/// Far more than any propagation takes; reaching it fails the test (no speed is asserted).
const BOUND: Duration = Duration::from_secs(10);

fn start_replica(dir: &std::path::Path, name: &str, port: u16, issuer: &str, db: &str) -> Proc {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, stack::idp_config()).unwrap();
    let mut cmd = Command::new(artifacts::idp_bin().unwrap());
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--issuer", issuer])
        .args(["--database", db])
        .env("IDP_KEY_ENCRYPTION_KEY", KEK);
    let (proc, _) =
        Proc::start_until_line(name, cmd, dir, "idp listening on ", Duration::from_secs(60))
            .unwrap();
    proc
}

fn hello(gateway: &str, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    client::get(&format!("{gateway}/api/hello"), &[("authorization", &auth)])
        .map_or(0, |r| r.status)
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
    let _r2 = start_replica(dir.path(), "idp-2", port_2, &issuer, &db);
    let (_rs, rs_port) =
        start_resource_server(dir.path(), "resource-server", free_port().unwrap()).unwrap();
    let start = |name: &str, idp_port: u16| {
        Gateway::start(
            dir.path(),
            name,
            idp_port,
            rs_port,
            &issuer,
            StackOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let a = start("envoy-a", port_1);
    let b = start("envoy-b", port_2);

    let mut delays = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        let login = password_login(&format!("http://127.0.0.1:{port_1}")).unwrap();
        let token = login["access_token"].as_str().unwrap().to_owned();
        assert_eq!(hello(&a.url, &token), 200, "run {run}: A accepts");
        assert_eq!(hello(&b.url, &token), 200, "run {run}: B accepts");
        let auth = format!("Bearer {token}");
        let res = client::post_form(
            &format!("{}/oauth2/logout", a.url),
            &[("authorization", auth.as_str())],
            &[],
        )
        .unwrap();
        assert_eq!(res.status, 200, "run {run}: logout through A: {}", res.body);
        let logged_out = Instant::now();
        loop {
            if hello(&b.url, &token) == 401 {
                delays.push(logged_out.elapsed());
                break;
            }
            assert!(
                logged_out.elapsed() < BOUND,
                "run {run}: B still accepts the token {BOUND:?} after the logout"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
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
}
