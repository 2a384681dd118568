//! Runs host-test's scenario files (`host-test/scenarios/*.json`, format in its README) against
//! real Envoy: per scenario an Envoy with the scenario's plugin configuration and worker count,
//! fake upstreams on loopback that answer what the scenario says (and count the calls they get),
//! an echo service behind the route (so the headers the filter forwards are seen), the real clock
//! (token times are relative to the real now, `advance` steps sleep), and the same expectation
//! checks the harness makes ([`host_test::scenario::Observed`]).
//!
//! The harness is trusted only where the two agree; this is the other half of that comparison.

use crate::artifacts;
use crate::client;
use crate::process::{Proc, free_port};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use host_test::Scenario;
use host_test::scenario::{
    Observed, RequestSpec, ResponseSpec, SigningKeys, Step, call_key, route,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod compare;
pub mod module;
mod upstreams;

pub use compare::differences;
pub use module::{Module, differences_between_modules, native_module_dir};
pub use upstreams::FakeUpstreams;
use upstreams::unix_now;

/// The cluster the gateway's route forwards allowed requests to (an echo service). The scenario
/// format calls the forwarded-to upstream `resource-server`; here it is a cluster of its own so
/// that the calls the filter makes to `resource-server` (logout) are counted apart from traffic.
const ECHO_CLUSTER: &str = "scenario-echo";
/// The header the runner tags each request with, so the echo service says which it received.
const REQUEST_TAG: &str = "x-scenario-request";
/// Real time a scenario may spend in `advance` steps (every file runs here, so keep them short:
/// configure short periods rather than jumping minutes ahead).
pub const MAX_REAL_SLEEP: Duration = Duration::from_secs(5);
/// How long a `hang` route holds a call (the filter's own timeout is far shorter).
const HANG_FOR: Duration = Duration::from_secs(30);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A scenario that passed on Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub requests: usize,
    pub elapsed: Duration,
    /// What each request step observed, in order.
    pub observed: Vec<Observed>,
}

/// The Envoy bootstrap (JSON, which Envoy reads as YAML) for a scenario: the Wasm filter with the
/// scenario's configuration in front of the echo service, a static cluster per fake upstream.
pub fn bootstrap(
    scenario: &Scenario,
    listen_port: u16,
    admin_port: u16,
    wasm: &Path,
    ports: &BTreeMap<String, u16>,
) -> Value {
    bootstrap_for(
        scenario,
        listen_port,
        admin_port,
        &Module::Wasm(wasm.to_path_buf()),
        ports,
    )
}

/// [`bootstrap`] for either build of the filter.
pub fn bootstrap_for(
    scenario: &Scenario,
    listen_port: u16,
    admin_port: u16,
    module: &Module,
    ports: &BTreeMap<String, u16>,
) -> Value {
    let address =
        |port: u16| json!({"socket_address": {"address": "127.0.0.1", "port_value": port}});
    let clusters: Vec<Value> = ports
        .iter()
        .map(|(name, port)| {
            json!({
                "name": name,
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {"cluster_name": name, "endpoints": [
                    {"lb_endpoints": [{"endpoint": {"address": address(*port)}}]}
                ]}
            })
        })
        .collect();
    json!({
        "admin": {"address": address(admin_port)},
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": address(listen_port),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "gateway",
                        "codec_type": "AUTO",
                        "route_config": {"name": "local", "virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"},
                                        "route": {"cluster": ECHO_CLUSTER, "timeout": "10s"}}]
                        }]},
                        "http_filters": [
                            module.http_filter(&scenario.config.to_string()),
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                            }}
                        ]
                    }
                }]}]
            }],
            "clusters": clusters
        }
    })
}

/// A running Envoy for one scenario.
struct ScenarioEnvoy {
    proc: Proc,
    url: String,
    admin_url: String,
    /// What Envoy puts before the filter's own counter names.
    stats_prefix: &'static str,
}

impl ScenarioEnvoy {
    fn start(
        dir: &Path,
        scenario: &Scenario,
        module: &Module,
        ports: &BTreeMap<String, u16>,
    ) -> Result<ScenarioEnvoy, String> {
        let (listen_port, admin_port) = (free_port()?, free_port()?);
        let config = dir.join("envoy.json");
        let text = bootstrap_for(scenario, listen_port, admin_port, module, ports).to_string();
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(artifacts::envoy_bin()?);
        module.prepare(&mut cmd);
        cmd.arg("-c").arg(&config).args([
            "--use-dynamic-base-id",
            "--concurrency",
            &scenario.workers.max(1).to_string(),
            "-l",
            "info",
        ]);
        let mut proc = Proc::start("envoy", cmd, dir)?;
        let admin_url = format!("http://127.0.0.1:{admin_port}");
        let deadline = Instant::now() + START_TIMEOUT;
        while client::get(&format!("{admin_url}/ready"), &[]).map(|r| r.status) != Ok(200) {
            if !proc.is_running() || Instant::now() > deadline {
                return Err(format!("envoy not live; log:\n{}", proc.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(ScenarioEnvoy {
            proc,
            url: format!("http://127.0.0.1:{listen_port}"),
            admin_url,
            stats_prefix: module.stats_prefix(),
        })
    }

    /// Every counter of the filter (`wasmcustom.*` for the Wasm module), by the name the filter
    /// gave it.
    fn metrics(&self) -> Result<BTreeMap<String, u64>, String> {
        let res = client::get(
            &format!(
                "{}/stats?filter=^{}",
                self.admin_url,
                self.stats_prefix.replace('.', "\\.")
            ),
            &[],
        )?;
        Ok(res
            .body
            .lines()
            .filter_map(|line| {
                let (k, v) = line.split_once(": ")?;
                let name = k.trim().strip_prefix(self.stats_prefix)?;
                Some((name.to_owned(), v.trim().parse().ok()?))
            })
            .collect())
    }
}

/// Sends one request; returns status, headers and body (a reset or refused connection is an
/// observation too: no status).
fn send(
    url: &str,
    spec: &RequestSpec,
    (headers, body): (&[(String, String)], Option<String>),
    tag: &str,
) -> client::Response {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .allow_non_standard_methods(true)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .new_agent();
    let mut builder = ureq::http::Request::builder()
        .method(spec.method.as_str())
        .uri(format!("{url}{}", spec.path))
        .header(REQUEST_TAG, tag);
    for (k, v) in &spec.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    for (k, v) in headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let result = match body {
        Some(body) => builder
            .body(body.into_bytes())
            .map_err(|e| e.to_string())
            .and_then(|r| client::collect(agent.run(r))),
        None => builder
            .body(())
            .map_err(|e| e.to_string())
            .and_then(|r| client::collect(agent.run(r))),
    };
    result.unwrap_or_else(|e| client::Response {
        status: 0,
        headers: Vec::new(),
        body: format!("(no response: {e})"),
    })
}

struct Run<'a> {
    scenario: &'a Scenario,
    envoy: ScenarioEnvoy,
    upstreams: FakeUpstreams,
    keys: SigningKeys,
    requests: usize,
    observed: Vec<Observed>,
}

impl Run<'_> {
    fn step(&mut self, step: &Step) -> Result<(), String> {
        if let Some(by) = step.advance {
            std::thread::sleep(by);
        }
        if let Some(change) = &step.upstream {
            self.upstreams
                .set_route(&change.cluster, &change.route, change.response.clone());
        }
        if let Some(request) = &step.request {
            let now = unix_now();
            let mut headers = Vec::new();
            let mut token_text = None;
            if let Some(spec) = &request.token {
                let text = self.scenario.token(&self.keys, spec, now)?;
                headers.push(("authorization".to_owned(), spec.authorization(&text)));
                token_text = Some(text);
            }
            let proofs = self.scenario.proofs(
                &self.keys,
                request,
                token_text.as_deref(),
                &self.envoy.url,
                now,
                self.requests,
            )?;
            headers.extend(proofs.into_iter().map(|p| ("dpop".to_owned(), p)));
            self.requests += 1;
            let tag = self.requests.to_string();
            let body = self.scenario.body(&self.keys, request, now)?;
            let res = send(&self.envoy.url, request, (&headers, body), &tag);
            let upstream_headers = self.upstreams.forwarded(&tag);
            let observed = Observed {
                status: (res.status != 0).then_some(res.status),
                forwarded: upstream_headers.is_some(),
                upstream_headers,
                response_headers: (res.status != 0).then(|| res.headers.clone()),
                body: res.body.clone(),
            };
            let expect = step.expect.clone().unwrap_or_default();
            let problems = expect.check(&observed);
            self.observed.push(observed.clone());
            if !problems.is_empty() {
                return Err(format!("{}\nobserved: {observed:#?}", problems.join("\n")));
            }
        }
        if let Some(expected) = &step.expect_upstream_calls {
            let calls = self.upstreams.calls();
            for (route, count) in expected {
                let got = calls.get(route).copied().unwrap_or(0);
                if got != *count {
                    return Err(format!(
                        "upstream calls to {route}: expected {count}, got {got} (all: {calls:?})"
                    ));
                }
            }
        }
        if let Some(expected) = &step.expect_metrics {
            let metrics = self.envoy.metrics()?;
            for (name, value) in expected {
                let got = metrics.get(name).copied().unwrap_or(0);
                if got != *value {
                    return Err(format!(
                        "metric {name}: expected {value}, got {got} (all: {metrics:?})"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Real time the scenario's `advance` steps take.
pub fn real_sleep(scenario: &Scenario) -> Duration {
    scenario.steps.iter().filter_map(|s| s.advance).sum()
}

/// Runs `scenario` on a real Envoy loading `wasm`; `Err` names the first step that failed, what
/// did not hold, and the tail of Envoy's log.
pub fn run(scenario: &Scenario, wasm: &Path) -> Result<Passed, String> {
    run_module(scenario, &Module::Wasm(wasm.to_path_buf()))
}

/// [`run`] with either build of the filter.
pub fn run_module(scenario: &Scenario, module: &Module) -> Result<Passed, String> {
    let sleep = real_sleep(scenario);
    if sleep > MAX_REAL_SLEEP {
        return Err(format!(
            "its advance steps take {sleep:?} of real time (at most {MAX_REAL_SLEEP:?}): shorten \
             them (short refresh periods in the configuration rather than long time jumps)"
        ));
    }
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("oauth2gw-scenario-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let upstreams = FakeUpstreams::start(scenario)?;
    if scenario.config_rejected {
        let config = dir.path().join("envoy.json");
        let text = bootstrap_for(
            scenario,
            free_port()?,
            free_port()?,
            module,
            &upstreams.ports,
        );
        std::fs::write(&config, text.to_string()).map_err(|e| e.to_string())?;
        return match module.validate(&config) {
            Ok(log) => Err(format!(
                "Envoy accepted the configuration, which should have been rejected; log:\n{log}"
            )),
            Err(log) if log.contains("invalid plugin configuration") => Ok(Passed {
                requests: 0,
                elapsed: started.elapsed(),
                observed: Vec::new(),
            }),
            Err(log) => Err(format!(
                "Envoy refused the configuration, but not because the filter did; log:\n{log}"
            )),
        };
    }
    let envoy = ScenarioEnvoy::start(dir.path(), scenario, module, &upstreams.ports)?;
    let mut run = Run {
        scenario,
        envoy,
        upstreams,
        keys: scenario.signing_keys()?,
        requests: 0,
        observed: Vec::new(),
    };
    for (index, step) in scenario.steps.iter().enumerate() {
        run.step(step).map_err(|e| {
            format!(
                "step {} {}: {e}\nenvoy log (tail):\n{}",
                index + 1,
                step.describe(),
                run.envoy.proc.log_tail()
            )
        })?;
    }
    Ok(Passed {
        requests: run.requests,
        elapsed: started.elapsed(),
        observed: run.observed,
    })
}

/// The scenario directory of host-test.
pub fn scenario_dir() -> PathBuf {
    artifacts::workspace_root()
        .join("host-test")
        .join("scenarios")
}
