//! Runs a scenario in the harness: a simulated Envoy whose HTTP calls are answered by fake
//! upstreams built from the scenario, as soon as they are made (like a local service would).

use super::tokens::{self, Key};
use super::{Expect, RequestSpec, ResponseSpec, Scenario, Step};
use crate::envoy::{Envoy, EnvoyOptions};
use crate::error::HostError;
use crate::host::Host;
use crate::http::{Outcome, Request, Response};
use crate::http_calls::CallId;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What a scenario run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScenarioReport {
    pub steps: usize,
    pub requests: usize,
    /// Fuel the filter spent on the scenario's requests (sum over streams).
    pub request_fuel: u64,
}

/// How long a paused request may wait for its calls before the run gives up.
const MAX_WAIT: Duration = Duration::from_secs(120);
const WAIT_SLICE: Duration = Duration::from_millis(100);

type Routes = BTreeMap<String, BTreeMap<String, ResponseSpec>>;

/// Fake upstream bookkeeping.
#[derive(Default)]
struct Upstreams {
    routes: Routes,
    /// `"cluster METHOD /path"` → requests received.
    calls: BTreeMap<String, usize>,
    seen: BTreeSet<CallId>,
}

fn err(e: HostError) -> String {
    e.to_string()
}

impl Upstreams {
    /// Answers every pending call that has a (non-hanging) route; unknown routes get 404.
    fn serve(&mut self, envoy: &mut Envoy, keys: &BTreeMap<String, Key>) -> crate::Result<()> {
        for _ in 0..100 {
            let mut answered = false;
            for call in envoy.pending_http_calls() {
                let method = call.method().unwrap_or("GET").to_owned();
                let full_path = call.path().unwrap_or("/").to_owned();
                let path = full_path.split('?').next().unwrap_or("/").to_owned();
                if self.seen.insert(call.id) {
                    *self
                        .calls
                        .entry(format!("{} {method} {path}", call.cluster))
                        .or_default() += 1;
                }
                let routes = self.routes.get(&call.cluster);
                let spec = routes.and_then(|r| {
                    r.get(&format!("{method} {full_path}"))
                        .or_else(|| r.get(&format!("{method} {path}")))
                });
                let response = match spec {
                    Some(spec) if spec.hang => continue,
                    Some(spec) => response(spec, keys, envoy.clock().unix_seconds())
                        .map_err(|e| HostError::Usage(format!("upstream {}: {e}", call.cluster)))?,
                    None => Response::new(404).body("no such route in the scenario"),
                };
                envoy.respond(call.id, response)?;
                answered = true;
            }
            if !answered {
                return Ok(());
            }
        }
        Err(HostError::Usage(
            "fake upstreams kept receiving calls (a loop?)".to_owned(),
        ))
    }
}

fn response(
    spec: &ResponseSpec,
    keys: &BTreeMap<String, Key>,
    now: u64,
) -> Result<Response, String> {
    let mut response = Response::new(spec.status);
    for (k, v) in &spec.headers {
        response = response.header(k, v.clone());
    }
    if let Some(body) = &spec.body {
        response = response.body(body.clone());
    }
    if let Some(value) = &spec.json {
        let mut value = value.clone();
        tokens::resolve_time(&mut value, now);
        response = response
            .header("content-type", "application/json")
            .body(value.to_string());
    }
    if let Some(names) = &spec.jwks {
        let jwks: Result<Vec<Value>, String> = names
            .iter()
            .map(|n| {
                keys.get(n)
                    .map(Key::jwk)
                    .ok_or_else(|| format!("no key {n}"))
            })
            .collect();
        response = response
            .header("content-type", "application/json")
            .body(json!({ "keys": jwks? }).to_string());
    }
    Ok(response)
}

impl Scenario {
    /// Runs the scenario in a simulated Envoy running `host`'s module. `Err` describes the first
    /// step whose expectations failed.
    pub fn run(&self, host: &Host) -> Result<ScenarioReport, String> {
        let keys = self
            .keys
            .iter()
            .map(|(name, spec)| Key::new(name, spec).map(|k| (name.clone(), k)))
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let clusters: Vec<String> = self
            .upstreams
            .keys()
            .cloned()
            .chain(["resource-server".to_owned()])
            .collect();
        let options = EnvoyOptions::new()
            .workers(self.workers)
            .plugin_name(&self.name)
            .clusters(clusters)
            .plugin_config(self.config.to_string());
        let envoy = host.envoy(options).map_err(err)?;
        if self.config_rejected {
            return if envoy.configured() {
                Err("the configuration was accepted, but should have been rejected".to_owned())
            } else {
                Ok(ScenarioReport::default())
            };
        }
        if !envoy.configured() {
            let why: Vec<String> = envoy.logs().into_iter().map(|e| e.message).collect();
            return Err(format!("the configuration was rejected: {why:#?}"));
        }
        let mut runner = Runner {
            scenario: self,
            envoy,
            keys,
            upstreams: Upstreams {
                routes: self.upstreams.clone(),
                ..Upstreams::default()
            },
            next_worker: 0,
            report: ScenarioReport::default(),
        };
        for (index, step) in self.steps.iter().enumerate() {
            runner
                .step(step)
                .map_err(|e| format!("step {} {}: {e}", index + 1, describe(step)))?;
            runner.report.steps += 1;
        }
        Ok(runner.report)
    }
}

fn describe(step: &Step) -> String {
    if let Some(r) = &step.request {
        return format!("({} {})", r.method, r.path);
    }
    if let Some(d) = step.advance {
        return format!("(advance {d:?})");
    }
    step.note
        .clone()
        .map(|n| format!("({n})"))
        .unwrap_or_default()
}

struct Runner<'a> {
    scenario: &'a Scenario,
    envoy: Envoy,
    keys: BTreeMap<String, Key>,
    upstreams: Upstreams,
    next_worker: usize,
    report: ScenarioReport,
}

impl Runner<'_> {
    fn serve(&mut self) -> Result<(), String> {
        self.upstreams
            .serve(&mut self.envoy, &self.keys)
            .map_err(err)
    }

    fn advance(&mut self, by: Duration) -> Result<(), String> {
        let Runner {
            envoy,
            upstreams,
            keys,
            ..
        } = self;
        envoy
            .advance_with(by, |e| upstreams.serve(e, keys))
            .map_err(err)
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        self.serve()?;
        if let Some(by) = step.advance {
            self.advance(by)?;
        }
        if let Some(change) = &step.upstream {
            self.upstreams
                .routes
                .entry(change.cluster.clone())
                .or_default()
                .insert(change.route.clone(), change.response.clone());
        }
        if let Some(request) = &step.request {
            let outcome = self.request(request)?;
            check(step.expect.as_ref().unwrap_or(&Expect::default()), &outcome)?;
        }
        if let Some(expected) = &step.expect_upstream_calls {
            for (route, count) in expected {
                let got = self.upstreams.calls.get(route).copied().unwrap_or(0);
                if got != *count {
                    return Err(format!(
                        "upstream calls to {route}: expected {count}, got {got} (all: {:?})",
                        self.upstreams.calls
                    ));
                }
            }
        }
        if let Some(expected) = &step.expect_metrics {
            for (name, value) in expected {
                let got = self.envoy.metric(name).unwrap_or(0);
                if got != *value {
                    return Err(format!("metric {name}: expected {value}, got {got}"));
                }
            }
        }
        Ok(())
    }

    fn request(&mut self, spec: &RequestSpec) -> Result<Outcome, String> {
        let mut request = Request::new(&spec.method, &spec.path);
        for (k, v) in &spec.headers {
            request = request.header(k, v.clone());
        }
        if let Some(token) = &spec.token {
            let key = self
                .keys
                .get(&token.key)
                .ok_or_else(|| format!("no key {}", token.key))?;
            let now = self.envoy.clock().unix_seconds();
            let text = tokens::build(token, key, &self.scenario.claims, now)?;
            request = request.bearer(&text);
        }
        if let Some(body) = &spec.body {
            request = request.body(body.clone());
        }
        let workers = self.envoy.workers().max(1);
        let worker = self.next_worker % workers;
        self.next_worker += 1;
        let id = self.envoy.worker(worker).send(request).map_err(err)?;
        self.envoy.deliver_queue_events().map_err(err)?;
        self.serve()?;
        let mut waited = Duration::ZERO;
        let outcome = loop {
            let outcome = self.envoy.worker(worker).outcome(id);
            if !matches!(outcome, Outcome::Paused(_)) {
                break outcome;
            }
            if waited >= MAX_WAIT {
                return Err(format!("the request is still paused after {MAX_WAIT:?}"));
            }
            self.advance(WAIT_SLICE)?;
            waited += WAIT_SLICE;
        };
        self.report.requests += 1;
        self.report.request_fuel += self.envoy.worker(worker).stream_fuel(id).unwrap_or(0);
        Ok(outcome)
    }
}

/// Compares an outcome with the expectations; lists every mismatch.
fn check(expect: &Expect, outcome: &Outcome) -> Result<(), String> {
    let mut problems = Vec::new();
    let reply = outcome.reply();
    if let Some(status) = expect.status
        && outcome.status() != Some(status)
    {
        problems.push(format!(
            "status: expected {status}, got {:?}",
            outcome.status()
        ));
    }
    if let Some(forwarded) = expect.forwarded
        && outcome.is_continued() != forwarded
    {
        problems.push(format!(
            "forwarded: expected {forwarded}, got {}",
            outcome.is_continued()
        ));
    }
    let upstream = outcome.upstream();
    for (name, value) in &expect.upstream_headers {
        let got = upstream.map(|u| u.request_headers.get_all(name));
        if got.as_deref() != Some(&[value.as_str()][..]) {
            problems.push(format!(
                "upstream header {name}: expected {value:?}, got {got:?}"
            ));
        }
    }
    for name in &expect.upstream_headers_absent {
        if let Some(value) = upstream.and_then(|u| u.header(name)) {
            problems.push(format!(
                "upstream header {name} should be absent, is {value:?}"
            ));
        }
    }
    for (name, value) in &expect.headers {
        let got = reply.and_then(|r| r.header(name));
        if got != Some(value.as_str()) {
            problems.push(format!(
                "response header {name}: expected {value:?}, got {got:?}"
            ));
        }
    }
    for (name, part) in &expect.headers_contain {
        let got = reply.and_then(|r| r.header(name));
        if !got.is_some_and(|g| g.contains(part.as_str())) {
            problems.push(format!(
                "response header {name}: expected to contain {part:?}, got {got:?}"
            ));
        }
    }
    let body = reply.map(|r| r.body_text()).unwrap_or_default();
    if let Some(part) = &expect.body_contains
        && !body.contains(part.as_str())
    {
        problems.push(format!("body: expected to contain {part:?}, got {body:?}"));
    }
    if let Some(part) = &expect.body_lacks
        && body.contains(part.as_str())
    {
        problems.push(format!("body: must not contain {part:?}, got {body:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\noutcome: {outcome:#?}", problems.join("\n")))
    }
}
