//! Runs a scenario in the harness: a simulated Envoy whose HTTP calls are answered by fake
//! upstreams built from the scenario, as soon as they are made (like a local service would).

use super::check::Observed;
use super::tokens::SigningKeys;
use super::{Expect, RequestSpec, ResponseSpec, Scenario, Step, call_key, route};
use crate::envoy::{Envoy, EnvoyOptions};
use crate::error::HostError;
use crate::host::Host;
use crate::http::{Outcome, Request, Response};
use crate::http_calls::CallId;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What a scenario run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScenarioReport {
    pub steps: usize,
    pub requests: usize,
    /// Fuel the filter spent on the scenario's requests (sum over streams).
    pub request_fuel: u64,
    /// What each request step observed, in order (to compare with another runner's).
    pub observed: Vec<Observed>,
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
    fn serve(&mut self, envoy: &mut Envoy, keys: &SigningKeys) -> crate::Result<()> {
        for _ in 0..100 {
            let mut answered = false;
            for call in envoy.pending_http_calls() {
                let method = call.method().unwrap_or("GET").to_owned();
                let full_path = call.path().unwrap_or("/").to_owned();
                if self.seen.insert(call.id) {
                    *self
                        .calls
                        .entry(call_key(&call.cluster, &method, &full_path))
                        .or_default() += 1;
                }
                let routes = self.routes.get(&call.cluster);
                let spec = routes.and_then(|r| route(r, &method, &full_path));
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

fn response(spec: &ResponseSpec, keys: &SigningKeys, now: u64) -> Result<Response, String> {
    let canned = spec.render(keys, now)?;
    let mut response = Response::new(canned.status);
    for (k, v) in canned.headers {
        response = response.header(&k, v);
    }
    if spec.body.is_some() || spec.json.is_some() || spec.jwks.is_some() {
        response = response.body(canned.body);
    }
    Ok(response)
}

impl Scenario {
    /// Runs the scenario in a simulated Envoy running `host`'s module. `Err` describes the first
    /// step whose expectations failed.
    pub fn run(&self, host: &Host) -> Result<ScenarioReport, String> {
        let keys = self.signing_keys()?;
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
                .map_err(|e| format!("step {} {}: {e}", index + 1, step.describe()))?;
            runner.report.steps += 1;
        }
        Ok(runner.report)
    }
}

struct Runner<'a> {
    scenario: &'a Scenario,
    envoy: Envoy,
    keys: SigningKeys,
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
            let observed = observe(&outcome);
            let result = check(
                step.expect.as_ref().unwrap_or(&Expect::default()),
                &observed,
                &outcome,
            );
            self.report.observed.push(observed);
            result?;
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
        let now = self.envoy.clock().unix_seconds();
        let mut token_text = None;
        if let Some(token) = &spec.token {
            let text = self.scenario.token(&self.keys, token, now)?;
            request = request.header("authorization", token.authorization(&text));
            token_text = Some(text);
        }
        let origin = format!("{}://{}", request.scheme, request.authority);
        let index = self.report.requests;
        for proof in
            self.scenario
                .proofs(&self.keys, spec, token_text.as_deref(), &origin, now, index)?
        {
            request = request.header("dpop", proof);
        }
        if let Some(body) = self.scenario.body(&self.keys, spec, now)? {
            request = request.body(body);
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

/// What the client and the upstream saw of a request.
fn observe(outcome: &Outcome) -> Observed {
    let reply = outcome.reply();
    Observed {
        status: outcome.status(),
        forwarded: outcome.is_continued(),
        upstream_headers: outcome
            .upstream()
            .map(|u| u.request_headers.as_pairs().to_vec()),
        response_headers: reply.map(|r| r.headers.as_pairs().to_vec()),
        body: reply.map(|r| r.body_text()).unwrap_or_default(),
    }
}

/// Compares an outcome with the expectations; lists every mismatch.
fn check(expect: &Expect, observed: &Observed, outcome: &Outcome) -> Result<(), String> {
    let problems = expect.check(observed);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\noutcome: {outcome:#?}", problems.join("\n")))
    }
}
