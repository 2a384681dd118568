//! What the tests of the gateway in front of a third-party OP share (node `oidc-provider`, see
//! [`crate::oidc_provider`], or an endpoint scripted by a test): which build of the filter runs,
//! the Envoy bootstrap (the filter in front of the demo resource server, the OP and others as
//! clusters), Envoy started on it, Envoy's statistics, and the resource server with its Envoy as
//! one [`Gateway`]. Used by `tests/e2e/third_party_op/`, `tests/e2e/introspection/`,
//! `tests/e2e/discovery.rs` and [`crate::federation`].
//!
//! The bootstraps are JSON, which Envoy reads as YAML; Envoy refuses an invalid one at start-up.

use crate::client;
use crate::process::{Proc, free_port};
use crate::scenario_runner::{Module, native_module_dir};
use crate::stack::start_resource_server;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long Envoy may take to be ready (started, the filter configured, keys fetched).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Which build of the filter Envoy loads (a test runs once per build: `*_wasm`, `*_native`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `filter.wasm` on V8.
    Wasm,
    /// The dynamic module `liboauth2_gateway.so`.
    Native,
}

impl Build {
    /// The built artefact Envoy loads (an error when it was not built).
    pub fn module(self) -> Result<Module, String> {
        match self {
            Build::Wasm => crate::artifacts::filter_wasm().map(Module::Wasm),
            Build::Native => native_module_dir().map(Module::Native),
        }
    }
}

/// A STATIC cluster with one endpoint, `127.0.0.1:port`.
pub fn cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}
        }}]}]}
    })
}

/// A bootstrap: a listener on `listen` with `module` (its JSON configuration `filter`) in front of
/// cluster `resource_server` (`/internal/` answered 404 by Envoy), the admin on `admin`, and one
/// cluster per `(name, port)` of `clusters`.
pub fn bootstrap(
    module: &Module,
    filter: &str,
    listen: u16,
    admin: u16,
    clusters: &[(&str, u16)],
) -> Value {
    let clusters: Vec<Value> = clusters
        .iter()
        .map(|(name, port)| cluster(name, *port))
        .collect();
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
                        "codec_type": "AUTO",
                        "normalize_path": true,
                        "merge_slashes": true,
                        "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT",
                        "route_config": {"name": "local", "virtual_hosts": [{
                            "name": "all",
                            "domains": ["*"],
                            "routes": [
                                {"match": {"prefix": "/internal/"}, "direct_response": {"status": 404}},
                                backchannel_route(),
                                {"match": {"prefix": "/"}, "route": {"cluster": "resource_server", "timeout": "10s"}}
                            ]
                        }]},
                        "http_filters": [
                            module.http_filter(filter),
                            backchannel_buffer(),
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

/// The back-channel logout path (the filter's default).
pub const BACKCHANNEL_PATH: &str = "/oauth2/backchannel-logout";
/// The largest back-channel logout request body the buffer holds (the filter refuses larger).
const BACKCHANNEL_BUFFER_BYTES: u32 = 32 * 1024;

/// Envoy's buffer filter, after the gateway's, off except on the back-channel logout route
/// ([`backchannel_route`]): a logout token's request then reaches no upstream before the filter
/// has its whole body and answered, whatever the OP's writes (docs/logout-and-revocation.md,
/// "Back-channel logout"; the Wasm module needs it).
pub fn backchannel_buffer() -> Value {
    json!({
        "name": "envoy.filters.http.buffer",
        "disabled": true,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": BACKCHANNEL_BUFFER_BYTES
        }
    })
}

/// The back-channel logout route, with the buffer filter on.
pub fn backchannel_route() -> Value {
    json!({
        "match": {"path": BACKCHANNEL_PATH},
        "route": {"cluster": "resource_server", "timeout": "10s"},
        "typed_per_filter_config": {"envoy.filters.http.buffer": {
            "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
            "config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
                "buffer": {"max_request_bytes": BACKCHANNEL_BUFFER_BYTES}
            }
        }}
    })
}

/// Takes [`backchannel_buffer`] and [`backchannel_route`] out of a [`bootstrap`]: a deployment
/// that did not add them.
pub fn without_backchannel_buffer(bootstrap: &mut Value) {
    let manager = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        [0]["typed_config"];
    if let Some(filters) = manager["http_filters"].as_array_mut() {
        filters.retain(|f| f["name"] != "envoy.filters.http.buffer");
    }
    if let Some(routes) = manager["route_config"]["virtual_hosts"][0]["routes"].as_array_mut() {
        routes.retain(|r| r["match"]["path"] != BACKCHANNEL_PATH);
    }
}

/// Writes `bootstrap` to `DIR/NAME.yaml` and starts Envoy on it (2 workers, log level info, its
/// log in `DIR/NAME.log`), with what `module` needs from Envoy's environment.
pub fn start_envoy(
    name: &str,
    module: &Module,
    bootstrap: &Value,
    dir: &Path,
) -> Result<Proc, String> {
    let text = serde_json::to_string_pretty(bootstrap).map_err(|e| e.to_string())?;
    let config = dir.join(format!("{name}.yaml"));
    std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut cmd = Command::new(crate::artifacts::envoy_bin()?);
    cmd.arg("-c")
        .arg(&config)
        .args(["--use-dynamic-base-id", "--concurrency", "2", "-l", "info"]);
    module.prepare(&mut cmd);
    Proc::start(name, cmd, dir)
}

/// An Envoy statistic by its full name (e.g. `cluster.op.upstream_rq_200`), read from the admin
/// at `admin_url`; 0 when absent or unreadable.
pub fn read_stat(admin_url: &str, full: &str) -> u64 {
    let url = format!("{admin_url}/stats?filter=^{}$", full.replace('.', "\\."));
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

/// The filter's counter `oauth2gw.NAME` under the prefix Envoy gives `module`'s counters.
pub fn counter_name(module: &Module, name: &str) -> String {
    format!("{}oauth2gw.{name}", module.stats_prefix())
}

/// The demo resource server and Envoy with the filter in front of it, cluster `op` for the OP;
/// everything stopped (and the directory of their configurations and logs removed) when dropped.
pub struct Gateway {
    pub build: Build,
    pub module: Module,
    pub envoy: Proc,
    /// The gateway listener's port.
    pub listen: u16,
    /// `http://127.0.0.1:LISTEN`.
    pub url: String,
    /// Envoy's admin.
    pub admin_url: String,
    _resource_server: Proc,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts the resource server and Envoy (listening on `listen`, chosen by the caller so that
    /// an OP started before can be told a URL of the gateway) with the filter configured by
    /// `filter`, the OP listening on `op_port`. Returns once Envoy runs, not once it is ready:
    /// see [`Gateway::wait_until`].
    pub fn start(
        build: Build,
        dir_prefix: &str,
        listen: u16,
        filter: &str,
        op_port: u16,
    ) -> Result<Gateway, String> {
        Self::start_shaped(build, dir_prefix, listen, filter, op_port, |_| {})
    }

    /// [`Gateway::start`], with `shape` applied to the bootstrap first (e.g.
    /// [`without_backchannel_buffer`]).
    pub fn start_shaped(
        build: Build,
        dir_prefix: &str,
        listen: u16,
        filter: &str,
        op_port: u16,
        shape: impl FnOnce(&mut Value),
    ) -> Result<Gateway, String> {
        let module = build.module()?;
        let dir = tempfile::Builder::new()
            .prefix(dir_prefix)
            .tempdir()
            .map_err(|e| e.to_string())?;
        let admin = free_port()?;
        let (resource_server, rs_port) = start_resource_server(dir.path(), "resource-server", 0)?;
        let clusters = [("op", op_port), ("resource_server", rs_port)];
        let mut bootstrap = bootstrap(&module, filter, listen, admin, &clusters);
        shape(&mut bootstrap);
        let envoy = start_envoy("envoy", &module, &bootstrap, dir.path())?;
        Ok(Gateway {
            build,
            module,
            envoy,
            listen,
            url: format!("http://127.0.0.1:{listen}"),
            admin_url: format!("http://127.0.0.1:{admin}"),
            _resource_server: resource_server,
            _dir: dir,
        })
    }

    /// Waits until `ready` holds, polling every 100 ms for 60 s at most; an error (with the tail
    /// of Envoy's log) when Envoy exits or the time is up.
    pub fn wait_until(
        &mut self,
        what: &str,
        ready: impl Fn(&Gateway) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if !self.envoy.is_running() {
                return Err(format!(
                    "[{:?}] envoy exited; log:\n{}",
                    self.build,
                    self.envoy.log_tail()
                ));
            }
            if ready(self) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "[{:?}] {what}: not within {READY_TIMEOUT:?}; log:\n{}",
                    self.build,
                    self.envoy.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// An Envoy statistic by its full name (0 when absent).
    pub fn stat(&self, full: &str) -> u64 {
        read_stat(&self.admin_url, full)
    }

    /// The filter's counter `oauth2gw.NAME` (0 when absent).
    pub fn counter(&self, name: &str) -> u64 {
        self.stat(&counter_name(&self.module, name))
    }

    /// Connections each of Envoy's two workers accepted on the gateway listener.
    pub fn worker_connections(&self) -> [u64; 2] {
        [0, 1].map(|w| {
            self.stat(&format!(
                "listener.127.0.0.1_{}.worker_{w}.downstream_cx_total",
                self.listen
            ))
        })
    }

    /// `GET /api/hello`, with `token` as a Bearer token when given, on a new connection.
    pub fn get_hello(&self, token: Option<&str>) -> Result<client::Response, String> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        client::get(&format!("{}/api/hello", self.url), &headers)
    }
}

/// Seconds since the epoch (the gateway's clock is this machine's).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds since the epoch, with a fraction.
pub fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `PREFIX-PID-N-NANOS`: a value no other call of this process (nor an earlier run) returns.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}
