//! A provider configured by OpenID Connect Discovery only (issuer + cluster), in front of a real
//! third-party OP (node `oidc-provider`, see `e2e::oidc_provider`) on real Envoy, for both builds
//! of the filter (`*_wasm`, `*_native`):
//!
//! 1. the filter reads the OP's `/.well-known/openid-configuration` through cluster `op`, then
//!    the keys from its `jwks_uri`; the OP's JWT access tokens are accepted, others refused;
//! 2. a configured issuer that differs from the document's (`http://localhost:PORT` against the
//!    OP's `http://127.0.0.1:PORT`): the provider gets no keys, the OP's tokens are refused and
//!    Envoy's log says why;
//! 3. `introspection` and `revoke` named by their client only: the document's
//!    `introspection_endpoint` and `revocation_endpoint` serve the OP's opaque tokens and a logout
//!    through the gateway (the token is revoked at the OP and refused after).
//!
//! By hand: `cargo test -p e2e --test e2e -- discovery:: --nocapture`.

use e2e::client;
use e2e::oidc_provider::{
    GATEWAY_SECRET, OidcProvider, OpOptions, RESOURCE_ES256, RESOURCE_OPAQUE, RESOURCE_RS256,
};
use e2e::process::{Proc, free_port};
use e2e::scenario_runner::{Module, native_module_dir};
use e2e::stack::start_resource_server;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Wasm,
    Native,
}

fn module(kind: Kind) -> Module {
    match kind {
        Kind::Wasm => Module::Wasm(e2e::artifacts::filter_wasm().unwrap_or_else(|e| panic!("{e}"))),
        Kind::Native => Module::Native(native_module_dir().unwrap_or_else(|e| panic!("{e}"))),
    }
}

const RS_SECRET: &str = "demo-gateway-to-rs-secret-0123456789";

/// One provider by discovery; with `endpoints`, also its introspection (opaque tokens) and
/// revocation endpoints named by the gateway's client only, and a logout.
fn filter_config(issuer: &str, endpoints: bool) -> String {
    let mut config = json!({
        "providers": [{
            "name": "oidc-provider",
            "issuer": issuer,
            "audiences": [RESOURCE_ES256, RESOURCE_RS256],
            "algorithms": ["ES256", "RS256"],
            "leeway_seconds": 5,
            "discovery": {"cluster": "op", "refresh_seconds": 300, "timeout_ms": 3000}
        }],
        "rules": [{"match": {"prefix": "/api/"}}]
    });
    if endpoints {
        let client = json!({"client_id": "gateway", "client_secret": GATEWAY_SECRET});
        let provider = &mut config["providers"][0];
        provider["audiences"] = json!([RESOURCE_ES256, RESOURCE_RS256, RESOURCE_OPAQUE]);
        provider["introspection"] = client.clone();
        provider["revoke"] = client;
        provider["max_token_lifetime_seconds"] = json!(600);
        config["logout"] = json!({
            "path": "/oauth2/logout",
            "resource_server": {
                "cluster": "resource_server", "path": "/internal/sessions/revoke",
                "secret_header": "x-gateway-secret", "secret": RS_SECRET, "timeout_ms": 3000
            }
        });
    }
    config.to_string()
}

fn cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name, "type": "STATIC", "connect_timeout": "2s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}
        }}]}]}
    })
}

fn bootstrap(module: &Module, config: &str, op: u16, rs: u16, listen: u16, admin: u16) -> Value {
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "gateway",
                        "route_config": {"name": "local", "virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "resource_server", "timeout": "10s"}}]
                        }]},
                        "http_filters": [
                            module.http_filter(config),
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                            }}
                        ]
                    }
                }]}]
            }],
            "clusters": [cluster("op", op), cluster("resource_server", rs)]
        }
    })
}

struct Setup {
    kind: Kind,
    module: Module,
    op: OidcProvider,
    _rs: Proc,
    envoy: Proc,
    url: String,
    admin_url: String,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// The OP, the resource server, and Envoy whose one provider is `issuer(op)` by discovery.
    fn start(kind: Kind, issuer: impl FnOnce(&OidcProvider) -> String) -> Setup {
        Setup::start_with(kind, issuer, false)
    }

    /// As [`Setup::start`]; `endpoints`: see [`filter_config`].
    fn start_with(
        kind: Kind,
        issuer: impl FnOnce(&OidcProvider) -> String,
        endpoints: bool,
    ) -> Setup {
        let module = module(kind);
        let dir = tempfile::Builder::new()
            .prefix("oauth2gw-discovery-")
            .tempdir()
            .unwrap();
        let (listen, admin) = (free_port().unwrap(), free_port().unwrap());
        let op = OidcProvider::start(OpOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let (rs, rs_port) = start_resource_server(dir.path(), "resource-server", 0)
            .unwrap_or_else(|e| panic!("{e}"));
        let config = filter_config(&issuer(&op), endpoints);
        let bootstrap = bootstrap(&module, &config, op.port(), rs_port, listen, admin);
        let path = dir.path().join("envoy.yaml");
        std::fs::write(&path, serde_json::to_string_pretty(&bootstrap).unwrap()).unwrap();
        let mut cmd = Command::new(e2e::artifacts::envoy_bin().unwrap_or_else(|e| panic!("{e}")));
        cmd.arg("-c").arg(&path).args([
            "--use-dynamic-base-id",
            "--concurrency",
            "2",
            "-l",
            "info",
        ]);
        module.prepare(&mut cmd);
        let envoy = Proc::start("envoy", cmd, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        Setup {
            kind,
            module,
            op,
            _rs: rs,
            envoy,
            url: format!("http://127.0.0.1:{listen}"),
            admin_url: format!("http://127.0.0.1:{admin}"),
            _dir: dir,
        }
    }

    /// Waits until `done` holds (60 s at most), Envoy still running.
    fn wait_for(&mut self, what: &str, done: impl Fn(&Setup) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                self.envoy.is_running(),
                "[{:?}] envoy exited; log:\n{}",
                self.kind,
                self.envoy.log_tail()
            );
            if done(self) {
                return;
            }
            if Instant::now() >= deadline {
                let log = self.envoy.log_text();
                let ours: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("oauth2") || l.contains("error"))
                    .collect();
                panic!(
                    "[{:?}] {what} within 60 s; log:\n{}",
                    self.kind,
                    ours.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The filter's counter `oauth2gw.NAME` (0 when absent).
    fn counter(&self, name: &str) -> u64 {
        let full = format!("{}oauth2gw.{name}", self.module.stats_prefix());
        let url = format!(
            "{}/stats?filter=^{}$",
            self.admin_url,
            full.replace('.', "\\.")
        );
        let Ok(res) = client::get(&url, &[]) else {
            return 0;
        };
        res.body
            .lines()
            .find_map(|line| {
                let (k, v) = line.split_once(": ")?;
                (k.trim() == full).then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0)
    }

    fn hello(&self, token: Option<&str>) -> u16 {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        client::get(&format!("{}/api/hello", self.url), &headers)
            .unwrap()
            .status
    }
}

fn the_ops_tokens_are_accepted_by_discovery_alone(kind: Kind) {
    let _slot = crate::slot();
    let mut s = Setup::start(kind, |op| op.issuer().to_owned());
    s.wait_for(
        "the OP's keys fetched through its discovery document",
        |s| s.counter("discovery_ok") >= 1 && s.counter("jwks_fetch_ok") >= 1,
    );
    for resource in [RESOURCE_ES256, RESOURCE_RS256] {
        let token =
            s.op.client_credentials(resource)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.hello(Some(&token)), 200, "[{kind:?}] {resource}");
        let mut tampered = token.clone();
        tampered.push('A');
        assert_eq!(s.hello(Some(&tampered)), 401, "[{kind:?}] tampered");
    }
    assert_eq!(s.hello(None), 401, "[{kind:?}] no token");
    assert_eq!(
        s.counter("discovery_ok"),
        1,
        "[{kind:?}] once per Envoy (concurrency 2)"
    );
    assert_eq!(s.counter("discovery_failed"), 0);
}

fn a_document_for_another_issuer_leaves_the_provider_unusable(kind: Kind) {
    let _slot = crate::slot();
    // The same OP, named by another spelling of its origin: not the document's issuer exactly.
    let mut s = Setup::start(kind, |op| format!("http://localhost:{}", op.port()));
    s.wait_for("the discovery document refused", |s| {
        s.counter("discovery_failed") >= 1
    });
    s.wait_for("the reason in Envoy's log", |s| {
        s.envoy.log_text().contains("is not the configured issuer")
    });
    let log = s.envoy.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("is not the configured issuer"))
        .unwrap_or_default();
    assert!(
        line.contains("error") && line.contains(s.op.issuer()),
        "[{kind:?}] {line}"
    );
    assert_eq!(s.counter("jwks_fetch_ok"), 0, "[{kind:?}] no keys fetched");
    let token =
        s.op.client_credentials(RESOURCE_ES256)
            .unwrap_or_else(|e| panic!("{e}"));
    let status = s.hello(Some(&token));
    assert!(matches!(status, 401 | 503), "[{kind:?}] refused: {status}");
}

fn discovered_endpoints_serve_introspection_and_logout(kind: Kind) {
    let _slot = crate::slot();
    let mut s = Setup::start_with(kind, |op| op.issuer().to_owned(), true);
    s.wait_for("the OP's discovery document read", |s| {
        s.counter("discovery_ok") >= 1
    });
    let token =
        s.op.client_credentials(RESOURCE_OPAQUE)
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(!token.contains('.'), "not an opaque token: {token}");
    assert_eq!(s.hello(Some(&token)), 200, "[{kind:?}] opaque token");
    assert!(
        s.counter("introspection_call_ok") >= 1,
        "[{kind:?}] asked at the discovered introspection_endpoint"
    );
    let auth = format!("Bearer {token}");
    let res = client::post_form(
        &format!("{}/oauth2/logout", s.url),
        &[("authorization", &auth)],
        &[],
    )
    .unwrap();
    assert_eq!(res.status, 200, "[{kind:?}] logout: {}", res.body);
    // Revoked at the OP, through its discovered revocation_endpoint.
    let answer = s.op.introspect(&token).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer["active"], false, "[{kind:?}] {answer}");
    assert_eq!(s.hello(Some(&token)), 401, "[{kind:?}] after logout");
}

#[test]
fn discovered_endpoints_serve_introspection_and_logout_wasm() {
    discovered_endpoints_serve_introspection_and_logout(Kind::Wasm);
}

#[test]
fn discovered_endpoints_serve_introspection_and_logout_native() {
    discovered_endpoints_serve_introspection_and_logout(Kind::Native);
}

#[test]
fn the_ops_tokens_are_accepted_by_discovery_alone_wasm() {
    the_ops_tokens_are_accepted_by_discovery_alone(Kind::Wasm);
}

#[test]
fn the_ops_tokens_are_accepted_by_discovery_alone_native() {
    the_ops_tokens_are_accepted_by_discovery_alone(Kind::Native);
}

#[test]
fn a_document_for_another_issuer_leaves_the_provider_unusable_wasm() {
    a_document_for_another_issuer_leaves_the_provider_unusable(Kind::Wasm);
}

#[test]
fn a_document_for_another_issuer_leaves_the_provider_unusable_native() {
    a_document_for_another_issuer_leaves_the_provider_unusable(Kind::Native);
}
