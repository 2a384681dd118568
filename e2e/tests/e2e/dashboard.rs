//! The Grafana dashboard (`docs/grafana/oauth2-gateway.json`, described in docs/dashboard.md)
//! against what it reads: it is a Grafana dashboard over a `${datasource}` Prometheus variable;
//! it shows every counter both modules define (`filter::counters::NAMES`); and after real traffic
//! through the real stack, every series any panel queries is in the output of a real Envoy's
//! `/stats/prometheus` and of the IDP's `/metrics`, for the Wasm module and for the native module
//! (the dashboard's `prefix` variable picks the module).
//!
//! The metric names are taken from each panel's PromQL by `promql-parser` (the queries' own
//! grammar); the samples of the text exposition are read with the same parser (a sample's
//! `name{label="value",...}` is a PromQL vector selector with equality matchers).

use e2e::client;
use e2e::process::free_port;
use e2e::stack::{
    DEMO_CLIENT, Gateway, Stack, StackOptions, idp_config, password_login, start_idp_with_config,
    start_resource_server,
};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const DASHBOARD: &str = "docs/grafana/oauth2-gateway.json";
/// The Prometheus scrape configuration docs/dashboard.md shows: the tests scrape its paths.
const SCRAPE_CONFIG: &str = "docs/grafana/prometheus.yml";
/// The dashboard's variable naming how Envoy's Prometheus output prefixes the module's counters.
const PREFIX_VARIABLE: &str = "prefix";
/// What Grafana puts in place of `$__rate_interval` (any valid duration parses alike).
const RATE_INTERVAL: &str = "5m";

fn dashboard() -> Value {
    let path = e2e::artifacts::workspace_root().join(DASHBOARD);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// The `metrics_path` of each job of the scrape configuration, by job name.
fn scrape_paths() -> BTreeMap<String, String> {
    let path = e2e::artifacts::workspace_root().join(SCRAPE_CONFIG);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{SCRAPE_CONFIG}: {e}"));
    let config: Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{SCRAPE_CONFIG}: {e}"));
    config["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .map(|job| {
            let name = job["job_name"].as_str().expect("job_name").to_owned();
            let targets = job["static_configs"][0]["targets"].as_array();
            assert!(
                targets.is_some_and(|t| !t.is_empty()),
                "{SCRAPE_CONFIG}: job {name} has no targets"
            );
            // Prometheus' default path is /metrics
            let path = job["metrics_path"]
                .as_str()
                .unwrap_or("/metrics")
                .to_owned();
            (name, path)
        })
        .collect()
}

/// Every panel that is not a row, including those nested in collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            out.extend(panel["panels"].as_array().into_iter().flatten());
        } else {
            out.push(panel);
        }
    }
    out
}

fn variable<'a>(dashboard: &'a Value, name: &str) -> &'a Value {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no template variable {name:?}"))
}

/// The module prefixes the dashboard offers, by the option's text (`Wasm`, `Native`).
fn module_prefixes(dashboard: &Value) -> BTreeMap<String, String> {
    variable(dashboard, PREFIX_VARIABLE)["options"]
        .as_array()
        .expect("prefix options")
        .iter()
        .map(|o| {
            (
                o["text"].as_str().expect("text").to_owned(),
                o["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect()
}

/// A panel query as Grafana sends it to Prometheus with the module `prefix` selected.
fn interpolate(expr: &str, prefix: &str) -> String {
    let out = expr
        .replace("${prefix}", prefix)
        .replace("$prefix", prefix)
        .replace("${__rate_interval}", RATE_INTERVAL)
        .replace("$__rate_interval", RATE_INTERVAL);
    assert!(
        !out.contains('$'),
        "a variable the test does not know in {expr:?}"
    );
    out
}

#[derive(Default)]
struct Selectors(Vec<VectorSelector>);

impl ExprVisitor for Selectors {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        match expr {
            Expr::VectorSelector(vs) => self.0.push(vs.clone()),
            Expr::MatrixSelector(ms) => self.0.push(ms.vs.clone()),
            _ => {}
        }
        Ok(true)
    }
}

/// The series selectors of a PromQL expression.
fn selectors(promql: &str) -> Result<Vec<VectorSelector>, String> {
    let expr = promql_parser::parser::parse(promql).map_err(|e| format!("{promql:?}: {e}"))?;
    let mut found = Selectors::default();
    walk_expr(&mut found, &expr)?;
    Ok(found.0)
}

/// Every query of the dashboard with `prefix` selected: (panel title, PromQL).
fn queries(dashboard: &Value, prefix: &str) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap_or_default()))
        })
        .map(|(title, expr)| (title, interpolate(expr, prefix)))
        .collect()
}

/// A sample of the text exposition: its metric name, labels and value.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text exposition (Envoy's `/stats/prometheus`, the IDP's
/// OpenMetrics `/metrics`). The series part of a sample line (up to the `}` that closes its
/// labels, or the first space) is read as a PromQL selector: same names, same quoting.
fn samples(exposition: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for line in exposition.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, rest) = line.split_at(series_end(line));
        let value = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("sample {line:?} has no value"))?;
        let expr = promql_parser::parser::parse(series)
            .map_err(|e| format!("sample {line:?} not readable: {e}"))?;
        let Expr::VectorSelector(vs) = expr else {
            return Err(format!("sample {line:?} is not a series"));
        };
        let name = vs
            .name
            .clone()
            .ok_or_else(|| format!("no name in {line:?}"))?;
        let labels = vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name != "__name__")
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect();
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    Ok(out)
}

/// Where the series part of a sample line ends: after the `}` closing its labels (quoted values
/// may hold `}` or an escaped quote), else at the first space.
fn series_end(line: &str) -> usize {
    let Some(open) = line.find('{').filter(|&i| !line[..i].contains(' ')) else {
        return line.find(' ').unwrap_or(line.len());
    };
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in line.char_indices().skip_while(|(i, _)| *i <= open) {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return i + 1,
            _ => {}
        }
    }
    line.len()
}

/// Whether the sample is one the selector selects (a missing label matches as empty, as in
/// Prometheus).
fn selects(vs: &VectorSelector, sample: &Sample) -> bool {
    vs.name.as_ref().is_none_or(|n| *n == sample.name)
        && vs.matchers.matchers.iter().all(|m| {
            let value = if m.name == "__name__" {
                sample.name.as_str()
            } else {
                sample.labels.get(&m.name).map_or("", String::as_str)
            };
            m.is_match(value)
        })
}

fn describe(vs: &VectorSelector) -> String {
    let mut s = vs.name.clone().unwrap_or_default();
    let matchers: Vec<String> = vs
        .matchers
        .matchers
        .iter()
        .map(|m| {
            let op = match &m.op {
                MatchOp::Equal => "=".to_owned(),
                MatchOp::NotEqual => "!=".to_owned(),
                MatchOp::Re(r) => format!("=~/{r}/"),
                MatchOp::NotRe(r) => format!("!~/{r}/"),
            };
            format!("{}{op}{:?}", m.name, m.value)
        })
        .collect();
    if !matchers.is_empty() {
        s.push_str(&format!("{{{}}}", matchers.join(",")));
    }
    s
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_over_a_prometheus_datasource_variable() {
    let dashboard = dashboard();
    assert!(
        dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 39,
        "schemaVersion of a current Grafana: {}",
        dashboard["schemaVersion"]
    );
    for field in ["title", "uid"] {
        assert!(
            dashboard[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    let datasource = variable(&dashboard, "datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    let prefix = variable(&dashboard, PREFIX_VARIABLE);
    assert_eq!(prefix["type"], "custom");
    let modules = module_prefixes(&dashboard);
    assert_eq!(
        modules.keys().map(String::as_str).collect::<Vec<_>>(),
        ["Native", "Wasm"],
        "one option per module"
    );
    assert!(
        modules.values().any(|v| *v == prefix["current"]["value"]),
        "the selected module is one of the options: {}",
        prefix["current"]
    );

    let rows = dashboard["panels"].as_array().expect("panels");
    let nested = rows
        .iter()
        .filter_map(|row| row["panels"].as_array())
        .flatten();
    let mut ids = BTreeSet::new();
    for panel in rows.iter().chain(nested) {
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no id: {panel}"));
        assert!(ids.insert(id), "panel id {id} twice");
        assert!(
            panel["gridPos"]["w"].as_u64().is_some() && panel["gridPos"]["h"].as_u64().is_some(),
            "gridPos of panel {id}"
        );
    }
    let shown = panels(&dashboard);
    assert!(shown.len() >= 10, "{} panels", shown.len());
    for panel in shown {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(
            !title.is_empty(),
            "a panel without a title: {}",
            panel["id"]
        );
        assert!(panel["type"].as_str().is_some(), "{title}: type");
        assert_eq!(panel["datasource"]["type"], "prometheus", "{title}");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no targets");
        let mut refs = BTreeSet::new();
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            let r = target["refId"].as_str().expect("refId");
            assert!(refs.insert(r), "{title}: refId {r} twice");
            let expr = target["expr"].as_str().unwrap_or_default();
            for prefix in modules.values() {
                let found = selectors(&interpolate(expr, prefix)).unwrap_or_else(|e| {
                    panic!("{title}: not PromQL with prefix {prefix:?}: {e}");
                });
                assert!(!found.is_empty(), "{title}: {expr:?} selects nothing");
            }
        }
    }
}

#[test]
fn the_dashboard_shows_every_counter_both_modules_define() {
    let dashboard = dashboard();
    for (module, prefix) in module_prefixes(&dashboard) {
        let queried: BTreeSet<String> = queries(&dashboard, &prefix)
            .iter()
            .flat_map(|(title, q)| selectors(q).unwrap_or_else(|e| panic!("{title}: {e}")))
            .filter_map(|vs| vs.name)
            .collect();
        let missing: Vec<String> = filter::counters::NAMES
            .iter()
            .map(|n| format!("{prefix}{}", n.replace('.', "_")))
            .filter(|n| !queried.contains(n))
            .collect();
        assert!(
            missing.is_empty(),
            "{module}: counters the dashboard does not show: {missing:?}"
        );
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Traffic that moves the counters: a token accepted twice (allowed, a cache miss then a hit),
/// no token (401), a DPoP refusal, a user's logout, a token request with a wrong secret and a
/// back-channel logout token the IDP refuses.
fn drive_traffic(stack: &Stack) {
    let hello = format!("{}/api/hello", stack.gateway_url);
    let token = stack.token(DEMO_CLIENT, None).unwrap();
    for _ in 0..2 {
        let res = client::get(&hello, &[("authorization", &bearer(&token))]).unwrap();
        assert_eq!(res.status, 200, "{}", res.body);
    }
    assert_eq!(client::get(&hello, &[]).unwrap().status, 401);
    let dpop = client::get(&hello, &[("authorization", &format!("DPoP {token}"))]).unwrap();
    assert_eq!(dpop.status, 401, "{}", dpop.body);
    assert!(
        dpop.header("www-authenticate")
            .is_some_and(|c| c.starts_with("DPoP")),
        "{:?}",
        dpop.headers
    );

    let login = password_login(&stack.idp.url).unwrap();
    let access = login["access_token"].as_str().unwrap();
    let res = client::post_form(
        &format!("{}/oauth2/logout", stack.gateway_url),
        &[("authorization", &bearer(access))],
        &[],
    )
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.body);

    let wrong_secret = client::post_form(
        &format!("{}/oauth2/token", stack.idp.url),
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT.0),
            ("client_secret", "not-the-secret"),
        ],
    )
    .unwrap();
    assert_eq!(wrong_secret.status, 401, "{}", wrong_secret.body);
    let refused = client::post_form(
        &format!("{}/oauth2/backchannel-logout", stack.idp.url),
        &[],
        &[("logout_token", "not.a.jwt")],
    )
    .unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
}

fn scrape(url: &str) -> Vec<Sample> {
    let res = client::get(url, &[]).unwrap();
    assert_eq!(res.status, 200, "{url}: {}", res.body);
    samples(&res.body).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// The sum of the samples named `name`.
fn value_of(exposition: &[Sample], name: &str) -> f64 {
    exposition
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

/// The stack of [`Stack::start`] with the Envoy template `template` of `envoy/`, its provider
/// accepting DPoP (`"dpop": "allowed"`) so that a DPoP refusal can be counted, and the demo
/// client given a back-channel logout URI (on the resource server, which has no such endpoint)
/// so that a logout makes the IDP deliver a logout token.
fn start_stack(template: &'static str) -> Result<Stack, String> {
    let dir = tempfile::Builder::new()
        .prefix("oauth2gw-e2e-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let (resource_server, rs_port) = start_resource_server(dir.path(), "resource-server", 0)?;
    let idp_port = free_port()?;
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let client = format!("id = \"{}\"\n", DEMO_CLIENT.0);
    let idp_toml = idp_config();
    if !idp_toml.contains(&client) {
        return Err(format!("no {client:?} in the IDP configuration"));
    }
    let idp_toml = idp_toml.replacen(
        &client,
        &format!(
            "{client}backchannel_logout_uri = \"http://127.0.0.1:{rs_port}/backchannel-logout\"\n"
        ),
        1,
    );
    let idp = start_idp_with_config(dir.path(), "idp", idp_port, &issuer, &idp_toml)?;
    let path = e2e::artifacts::workspace_root()
        .join("envoy")
        .join(template);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{template}: {e}"))?;
    let algorithms = r#""algorithms": ["ES256"],"#;
    if !text.contains(algorithms) {
        return Err(format!("{template}: no {algorithms} to add dpop after"));
    }
    let text = text.replacen(
        algorithms,
        &format!(r#"{algorithms} "dpop": "allowed","#),
        1,
    );
    let gateway = Gateway::start_text(&text, dir.path(), "envoy", (idp_port, rs_port), &issuer)?;
    Ok(Stack {
        gateway_url: gateway.url.clone(),
        dir,
        idp,
        idp_port,
        resource_server,
        rs_port,
        gateway,
        issuer,
        options: StackOptions {
            envoy_template: template,
            ..StackOptions::default()
        },
    })
}

/// Starts the stack with `module`'s Envoy template, drives traffic, and checks every series the
/// dashboard queries with that module's prefix against Envoy's and the IDP's output.
fn every_series_exists(module: &str, template: &'static str) {
    let _slot = crate::slot();
    let dashboard = dashboard();
    let prefix = module_prefixes(&dashboard)
        .remove(module)
        .unwrap_or_else(|| panic!("no {module} option in the prefix variable"));
    let stack = start_stack(template).unwrap_or_else(|e| panic!("{e}"));
    drive_traffic(&stack);
    // The logout's token goes out from the IDP's outbox, in the background.
    let idp_metrics = format!("{}{}", stack.idp.url, scrape_paths()["idp"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !scrape(&idp_metrics)
        .iter()
        .any(|s| s.name == "idp_event_deliveries_total")
    {
        assert!(
            Instant::now() < deadline,
            "{module}: the IDP delivered no back-channel logout token within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let paths = scrape_paths();
    let mut exposition = scrape(&format!("{}{}", stack.gateway.admin_url, paths["envoy"]));
    exposition.extend(scrape(&format!("{}{}", stack.idp.url, paths["idp"])));

    // The scrape saw the traffic, under this module's prefix.
    let counter = |name: &str| value_of(&exposition, &format!("{prefix}{name}"));
    for name in [
        "allowed",
        "cache_hit",
        "cache_miss",
        "denied_missing",
        "logout_ok",
    ] {
        assert!(
            counter(name) >= 1.0,
            "{module}: {prefix}{name} is {}",
            counter(name)
        );
    }
    let dpop_refusals: f64 = filter::counters::NAMES
        .iter()
        .filter(|n| n.starts_with("denied.dpop_"))
        .map(|n| counter(&n.replace('.', "_")))
        .sum();
    assert!(dpop_refusals >= 1.0, "{module}: no DPoP refusal counted");

    let mut missing = BTreeSet::new();
    let mut checked = BTreeSet::new();
    for (title, query) in queries(&dashboard, &prefix) {
        for vs in selectors(&query).unwrap_or_else(|e| panic!("{title}: {e}")) {
            let name = describe(&vs);
            if !exposition.iter().any(|s| selects(&vs, s)) {
                missing.insert(format!("{name} ({title})"));
            }
            checked.insert(name);
        }
    }
    assert!(
        missing.is_empty(),
        "{module}: series the dashboard queries that neither Envoy's /stats/prometheus nor the IDP's /metrics has: {missing:#?}"
    );
    println!(
        "{module}: all {} series the dashboard queries exist",
        checked.len()
    );
}

#[test]
fn every_series_the_dashboard_queries_exists_with_the_wasm_module() {
    every_series_exists("Wasm", "envoy.yaml");
}

#[test]
fn every_series_the_dashboard_queries_exists_with_the_native_module() {
    every_series_exists("Native", "envoy-native.yaml");
}

#[test]
fn exposition_samples_read_as_selectors() {
    let text = "# TYPE a counter\na_total{} 3\nb_bucket{le=\"+Inf\",route=\"/x}\\\"y\"} 1 1700000000\nc 0\n# EOF\n";
    let read = samples(text).unwrap();
    let names: Vec<&str> = read.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a_total", "b_bucket", "c"]);
    assert_eq!(read[1].labels["route"], "/x}\"y");
    assert_eq!(read[1].labels["le"], "+Inf");
    assert_eq!(read[0].value, 3.0);
    assert_eq!(value_of(&read, "b_bucket"), 1.0);
    let vs = &selectors("rate(b_bucket{route=~\"/x.*\"}[5m])").unwrap()[0];
    assert!(selects(vs, &read[1]));
    assert!(!selects(vs, &read[0]));
}
