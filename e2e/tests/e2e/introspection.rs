//! Token introspection (RFC 7662, RFC 9701 answers) end to end: the gateway in front of a real
//! third-party OP (node `oidc-provider`, see `e2e::oidc_provider`) and the demo resource server,
//! on real Envoy with `--concurrency 2` (two workers: "once per Envoy" means something), for BOTH
//! builds of the filter (`*_wasm`: `filter.wasm` on V8; `*_native`: `liboauth2_gateway.so`).
//! Each test starts its own OP, resource server and Envoy on free loopback ports.
//!
//! 1. `opaque_tokens_*` (one Envoy, `cache_seconds` 3, `negative_cache_seconds` 3):
//!    - 20 sequential requests with a fresh opaque token, over new connections spread over both
//!      workers: all 200 with the answer's claims forwarded, and the OP counted exactly one
//!      introspection (the answer is shared by the workers); a user's opaque token forwards its
//!      `sub` and `sid`;
//!    - a garbage opaque token: 401 `invalid_token`, and asked again within
//!      `negative_cache_seconds`: no new introspection;
//!    - after `cache_seconds` the token is introspected once more;
//!    - a token revoked at the OP is refused within `cache_seconds` + 1 s;
//!    - the OP's introspection failing: a token not cached → 503 with `Retry-After: 1` (asked
//!      again every time: a failure is not cached); a token cached before keeps working until its
//!      cache time ends and is then refused with 503 (never a stale positive); the OP back → 200;
//!    - the OP stopped: a token never seen → 503 with `Retry-After: 1`.
//! 2. `introspect_always_with_jwts_*`: `introspect: "always"` with the OP's JWTs → 503 (the OP
//!    refuses to introspect JWTs; see the test).
//! 3. `jwt_introspection_response_*`: RFC 9701 answers (`jwt_response: true`) → 200.
//! 4. `concurrent_first_requests_share_one_call_*` (ignored, known gap): 8 concurrent first
//!    requests with one token should make one introspection.
//! 5. `scripted_answers_*`: answers oidc-provider cannot be made to give, from a scripted loopback
//!    endpoint (a thread of the test): `iss` absent, another `iss` or `aud`, an `exp` before
//!    `cache_seconds` ends (asked again after it), an `exp` that has come (401), 5 KB of claims
//!    (kept) and 20 KB (503), unusable answers (503), 32 tokens at once (all kept), no answer in
//!    time (503); `rotated_key_answers_*`: an RFC 9701 answer signed by the OP's new key makes
//!    the gateway fetch the keys early.
//! 6. `dpop_bound_opaque_tokens_*`: an opaque token bound by the OP (`cnf.jkt` in its answer)
//!    needs its proof: as a bearer token, with another key's proof or another `htu` → 401.
//! 7. `introspect_always_scripted_*`: `introspect: "always"` in front of an IDP that introspects
//!    its JWTs (the scripted endpoint): active → 200 once per Envoy, inactive at the IDP → 401
//!    although the JWT is valid, a JWT refused locally is never introspected.
//! 8. `logout_with_an_opaque_token_*`: logout through the gateway with a user's opaque token
//!    (its answer cached) revokes it at the OP and refuses it and its session's sibling at once;
//!    `logout_with_a_fresh_opaque_token_*` (ignored, known gap): the same with a token the gateway
//!    has not introspected yet.
//! 9. `backchannel_logout_ends_opaque_sessions_*`: the OP's back-channel logout (`end_session`)
//!    refuses that session's cached opaque token at once; another user and a new login pass.
//! 10. `rfc9701_right_after_start_*` (ignored, timing-dependent probe): RFC 9701 answers in the
//!     first 100 ms after the keys were fetched (Wasm: sometimes a 503).
//!
//! The Envoy bootstrap is built here (no template file under `envoy/`); Envoy refuses an invalid
//! one at start-up. By hand: `cargo test -p e2e --test e2e -- introspection:: --nocapture`
//! (add `--include-ignored` for the known defects).

use base64::Engine;
use e2e::client;
use e2e::oidc_provider::{
    GATEWAY_SECRET, OidcProvider, OpOptions, RESOURCE_ES256, RESOURCE_OPAQUE, RESOURCE_RS256,
    SERVICE_SECRET,
};
use e2e::process::{Proc, free_port};
use e2e::scenario_runner::{Module, native_module_dir};
use e2e::stack::start_resource_server;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use test_support::{Issuer, ath};

/// `cache_seconds` of the opaque-token test (short, so that its expiry can be waited for).
const CACHE_SECONDS: u64 = 3;
/// `negative_cache_seconds` of the opaque-token test (at most `cache_seconds`).
const NEGATIVE_CACHE_SECONDS: u64 = 3;
const INTROSPECTION_PATH: &str = "/token/introspection";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Wasm,
    Native,
}

impl Kind {
    fn module(self) -> Module {
        match self {
            Kind::Wasm => {
                Module::Wasm(e2e::artifacts::filter_wasm().unwrap_or_else(|e| panic!("{e}")))
            }
            Kind::Native => Module::Native(native_module_dir().unwrap_or_else(|e| panic!("{e}"))),
        }
    }
}

/// Seconds since the epoch, with a fraction (the gateway's clock is this machine's).
fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Sleeps until the epoch time `t` (seconds) has passed.
fn sleep_until(t: f64) {
    let left = t - now_f64();
    if left > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(left));
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// How the gateway's one provider (the OP) is configured.
struct ProviderShape {
    audiences: Vec<&'static str>,
    /// The provider's `introspection` object.
    introspection: Value,
    /// Keys fetched from the OP's JWKS (needed for JWTs and RFC 9701 answers).
    jwks: bool,
    /// The provider's `dpop` mode (`None`: the default, disabled).
    dpop: Option<&'static str>,
    /// More members: `{"provider": {…}, "filter": {…}}` (`Null`: none).
    extra: Value,
}

/// The filter's JSON configuration: the OP (`issuer`, on `op_port`) as its only provider.
fn filter_config(issuer: &str, op_port: u16, shape: &ProviderShape) -> String {
    let authority = format!("127.0.0.1:{op_port}");
    let mut provider = json!({
        "name": "oidc-provider",
        "issuer": issuer,
        "audiences": shape.audiences,
        "algorithms": ["ES256", "RS256"],
        "leeway_seconds": 5,
        "introspection": shape.introspection,
    });
    if let Some(mode) = shape.dpop {
        provider["dpop"] = json!(mode);
    }
    if let (Some(p), Some(Value::Object(more))) =
        (provider.as_object_mut(), shape.extra.get("provider"))
    {
        p.extend(more.clone());
    }
    if shape.jwks {
        provider["jwks"] = json!({
            "cluster": "op", "path": "/jwks", "authority": authority, "refresh_seconds": 300,
            "min_early_refresh_seconds": 1
        });
    }
    let mut filter = json!({
        "realm": "gateway",
        "providers": [provider],
        "rules": [
            {"match": {"exact": "/healthz"}, "action": "bypass"},
            {"match": {"prefix": "/api/"}}
        ]
    });
    if let (Some(f), Some(Value::Object(more))) =
        (filter.as_object_mut(), shape.extra.get("filter"))
    {
        f.extend(more.clone());
    }
    filter.to_string()
}

/// The `introspection` object: the endpoint of the OP on `op_port` as the `gateway` client.
fn introspection(op_port: u16, extra: Value) -> Value {
    let mut v = json!({
        "cluster": "op",
        "path": INTROSPECTION_PATH,
        "authority": format!("127.0.0.1:{op_port}"),
        "timeout_ms": 2000,
        "client_id": "gateway",
        "client_secret": GATEWAY_SECRET,
    });
    if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
        v.extend(extra);
    }
    v
}

fn cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}
        }}]}]}
    })
}

/// An Envoy bootstrap (JSON, which Envoy reads as YAML): the filter in front of the resource
/// server, the OP as cluster `op`.
fn bootstrap(
    module: &Module,
    filter: &str,
    op_port: u16,
    rs_port: u16,
    listen: u16,
    admin: u16,
) -> Value {
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
                        "route_config": {"name": "local", "virtual_hosts": [{
                            "name": "all",
                            "domains": ["*"],
                            "routes": [
                                {"match": {"prefix": "/internal/"}, "direct_response": {"status": 404}},
                                {"match": {"prefix": "/"}, "route": {"cluster": "resource_server", "timeout": "10s"}}
                            ]
                        }]},
                        "http_filters": [
                            module.http_filter(filter),
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                            }}
                        ]
                    }
                }]}]
            }],
            "clusters": [cluster("op", op_port), cluster("resource_server", rs_port)]
        }
    })
}

/// The OP, the resource server and Envoy (2 workers) with the filter, stopped when dropped.
struct Setup {
    kind: Kind,
    module: Module,
    /// The OP (`None` once stopped by the test).
    op_proc: Option<OidcProvider>,
    /// The provider's issuer.
    issuer: String,
    _rs: Proc,
    envoy: Proc,
    listen: u16,
    url: String,
    admin_url: String,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// node oidc-provider as the OP.
    fn start(kind: Kind, shape: impl FnOnce(&OidcProvider) -> ProviderShape) -> Setup {
        Self::start_with(kind, |_| OpOptions::default(), shape)
    }

    /// node oidc-provider as the OP, started with `options(the gateway's listen port)`.
    fn start_with(
        kind: Kind,
        options: impl Fn(u16) -> OpOptions,
        shape: impl FnOnce(&OidcProvider) -> ProviderShape,
    ) -> Setup {
        let listen = free_port().unwrap();
        // Seen twice in ~12 runs of this file on a loaded 2-core machine: node started but never
        // printed OP_READY within 30 s (its log holds only Node's version warning). Started
        // again once, saying so; a second failure fails the test.
        let op = OidcProvider::start(options(listen))
            .or_else(|e| {
                println!("[{kind:?}] oidc-provider did not start, trying once more: {e}");
                OidcProvider::start(options(listen))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let shape = shape(&op);
        let (issuer, port) = (op.issuer().to_owned(), op.port());
        Self::launch(kind, Some(op), &issuer, port, listen, &shape)
    }

    /// Envoy in front of the resource server, with the OP `issuer` listening on `op_port`.
    fn launch(
        kind: Kind,
        op: Option<OidcProvider>,
        issuer: &str,
        op_port: u16,
        listen: u16,
        shape: &ProviderShape,
    ) -> Setup {
        let started = Instant::now();
        let module = kind.module();
        let dir = tempfile::Builder::new()
            .prefix("oauth2gw-introspection-")
            .tempdir()
            .unwrap();

        let admin = free_port().unwrap();
        let (rs, rs_port) = start_resource_server(dir.path(), "resource-server", 0)
            .unwrap_or_else(|e| panic!("{e}"));
        let filter = filter_config(issuer, op_port, shape);
        let config = dir.path().join("envoy.yaml");
        let text = serde_json::to_string_pretty(&bootstrap(
            &module, &filter, op_port, rs_port, listen, admin,
        ))
        .unwrap();
        std::fs::write(&config, text).unwrap();
        let mut cmd = Command::new(e2e::artifacts::envoy_bin().unwrap_or_else(|e| panic!("{e}")));
        cmd.arg("-c").arg(&config).args([
            "--use-dynamic-base-id",
            "--concurrency",
            "2",
            "-l",
            "info",
        ]);
        module.prepare(&mut cmd);
        let envoy = Proc::start("envoy", cmd, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let mut setup = Setup {
            kind,
            module,
            op_proc: op,
            issuer: issuer.to_owned(),
            _rs: rs,
            envoy,
            listen,
            url: format!("http://127.0.0.1:{listen}"),
            admin_url: format!("http://127.0.0.1:{admin}"),
            _dir: dir,
        };
        setup.wait_ready(shape.jwks);
        println!(
            "[{:?}] OP {issuer}, Envoy {} ready in {:?}",
            setup.kind,
            setup.url,
            started.elapsed()
        );
        setup
    }

    /// Envoy answers with the gateway's challenge (the filter is configured) and, with `jwks`,
    /// the filter has fetched the OP's keys.
    fn wait_ready(&mut self, jwks: bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                self.envoy.is_running(),
                "envoy exited; log:\n{}",
                self.envoy.log_tail()
            );
            let challenged = client::get(&format!("{}/api/hello", self.url), &[]).is_ok_and(|r| {
                r.status == 401
                    && r.header("www-authenticate")
                        .is_some_and(|c| c.starts_with("Bearer"))
            });
            if challenged && (!jwks || self.counter("jwks_fetch_ok") >= 1) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "[{:?}] envoy not ready within 60 s; log:\n{}",
                self.kind,
                self.envoy.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The OP (panics once it was stopped).
    fn op(&self) -> &OidcProvider {
        self.op_proc.as_ref().expect("the OP was stopped")
    }

    /// An Envoy stat by its full name (0 when absent).
    fn stat(&self, full: &str) -> u64 {
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

    /// The filter's counter `oauth2gw.NAME` (0 when absent).
    fn counter(&self, name: &str) -> u64 {
        self.stat(&format!("{}oauth2gw.{name}", self.module.stats_prefix()))
    }

    /// Connections each of Envoy's two workers accepted on the gateway listener.
    fn worker_connections(&self) -> [u64; 2] {
        [0, 1].map(|w| {
            self.stat(&format!(
                "listener.127.0.0.1_{}.worker_{w}.downstream_cx_total",
                self.listen
            ))
        })
    }

    /// `GET /api/hello` with `token` as a Bearer token, on a new connection.
    fn hello(&self, token: &str) -> client::Response {
        let auth = format!("Bearer {token}");
        client::get(
            &format!("{}/api/hello", self.url),
            &[("authorization", auth.as_str())],
        )
        .unwrap_or_else(|e| panic!("[{:?}] GET /api/hello: {e}", self.kind))
    }

    /// Introspection requests the OP received so far.
    fn introspections(&self) -> u64 {
        self.op().counters().unwrap_or_else(|e| panic!("{e}")).0
    }

    fn opaque_token(&self) -> String {
        let token = self
            .op()
            .client_credentials(RESOURCE_OPAQUE)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!token.contains('.'), "not an opaque token: {token}");
        token
    }
}

/// A 200 from the resource server for the OP's `service` client (claims forwarded by the filter).
fn assert_service_allowed(s: &Setup, res: &client::Response, what: &str) {
    assert_eq!(
        res.status, 200,
        "[{:?}] {what}: {} {:?} {}",
        s.kind, res.status, res.headers, res.body
    );
    let body = res.json().unwrap();
    assert_eq!(
        body["client_id"], "service",
        "[{:?}] {what}: {body}",
        s.kind
    );
    assert_eq!(body["scope"], "api", "[{:?}] {what}: {body}", s.kind);
    assert_eq!(body["issuer"], s.issuer, "[{:?}] {what}: {body}", s.kind);
}

/// A 401 `invalid_token` answered by the gateway.
fn assert_invalid_token(res: &client::Response, what: &str) {
    assert_eq!(
        res.status, 401,
        "{what}: {} {:?} {}",
        res.status, res.headers, res.body
    );
    let challenge = res.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
        "{what}: challenge {challenge:?}"
    );
}

/// A 503 of the gateway that cannot judge the token now: `Retry-After: 1`.
fn assert_unavailable(res: &client::Response, what: &str) {
    assert_eq!(
        res.status, 503,
        "{what}: {} {:?} {}",
        res.status, res.headers, res.body
    );
    assert_eq!(
        res.header("retry-after"),
        Some("1"),
        "{what}: {:?}",
        res.headers
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Opaque tokens: cached once per Envoy, inactive, expiry of the cache, revocation, OP failing

fn opaque_tokens(kind: Kind) {
    let _slot = crate::slot();
    let mut s = Setup::start(kind, |op| ProviderShape {
        audiences: vec![RESOURCE_OPAQUE],
        introspection: introspection(
            op.port(),
            json!({
                "introspect": "opaque",
                "cache_seconds": CACHE_SECONDS,
                "negative_cache_seconds": NEGATIVE_CACHE_SECONDS,
            }),
        ),
        // an opaque-only provider needs no keys
        jwks: false,
        dpop: None,
        extra: Value::Null,
    });
    let cache = CACHE_SECONDS as f64;

    // -- once per Envoy per TTL: 20 sequential requests, each on a new connection
    let token = s.opaque_token();
    let before = s.introspections();
    let workers_before = s.worker_connections();
    let t0 = now_f64();
    for i in 0..20 {
        assert_service_allowed(&s, &s.hello(&token), &format!("opaque token, request #{i}"));
    }
    let t1 = now_f64();
    let workers_after = s.worker_connections();
    let calls = s.introspections() - before;
    println!(
        "[{kind:?}] 20 requests in {:.0} ms, {calls} introspection(s), connections per worker {:?} -> {:?}",
        (t1 - t0) * 1000.0,
        workers_before,
        workers_after
    );
    // The answer lives until floor(now) + cache_seconds: at least cache_seconds - 1 s.
    assert!(
        t1 - t0 < cache - 1.0,
        "[{kind:?}] 20 requests took {:.1} s: too slow to count calls within one cache time",
        t1 - t0
    );
    assert_eq!(
        calls, 1,
        "[{kind:?}] the OP must be asked once per Envoy for 20 requests within the cache time"
    );
    assert_eq!(s.counter("introspection_call_ok"), 1);
    assert!(
        (0..2).all(|w| workers_after[w] > workers_before[w]),
        "[{kind:?}] both workers must have served some of the 20 connections (the answer shared \
         by the workers): {workers_before:?} -> {workers_after:?}"
    );
    // Upper bound of when that answer dies (Envoy's clock read after t0, before t1).
    let first_dies_by = t1 + cache;

    // -- a user's opaque token: its subject reaches the resource server
    let user = s
        .op()
        .login("alice", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!user.access_token.contains('.'), "{}", user.access_token);
    let res = s.hello(&user.access_token);
    assert_eq!(res.status, 200, "[{kind:?}] user token: {}", res.body);
    let body = res.json().unwrap();
    assert_eq!(body["sub"], "alice", "[{kind:?}] {body}");
    assert_eq!(body["client_id"], "webapp", "[{kind:?}] {body}");
    // the session's per-client sid (the OP's extraTokenClaims) comes with the answer
    assert_eq!(body["sid"], user.sid.as_str(), "[{kind:?}] {body}");
    assert_eq!(body["issuer"], s.op().issuer(), "[{kind:?}] {body}");

    // -- inactive: 401 invalid_token, kept for negative_cache_seconds
    let garbage = unique("garbage-opaque-token");
    let before = s.introspections();
    let inactive_before = s.counter("denied.inactive");
    assert_invalid_token(&s.hello(&garbage), "garbage token");
    assert_eq!(
        s.introspections(),
        before + 1,
        "[{kind:?}] garbage: one introspection"
    );
    for i in 0..4 {
        assert_invalid_token(&s.hello(&garbage), &format!("garbage token again #{i}"));
    }
    assert_eq!(
        s.introspections(),
        before + 1,
        "[{kind:?}] an inactive answer is kept for negative_cache_seconds: no new call"
    );
    assert_eq!(s.counter("denied.inactive"), inactive_before + 5);

    // -- after cache_seconds: asked again, once
    sleep_until(first_dies_by + 0.05);
    let before = s.introspections();
    assert_service_allowed(&s, &s.hello(&token), "after cache_seconds");
    assert_eq!(
        s.introspections(),
        before + 1,
        "[{kind:?}] after cache_seconds the token is introspected again"
    );
    for i in 0..5 {
        assert_service_allowed(&s, &s.hello(&token), &format!("cached again #{i}"));
    }
    assert_eq!(s.introspections(), before + 1, "[{kind:?}] cached again");

    // -- revoked at the OP: refused within cache_seconds + 1 s
    let revoked = s.opaque_token();
    let cached_at = now_f64();
    assert_service_allowed(&s, &s.hello(&revoked), "before revocation");
    s.op()
        .revoke(&revoked, Some("access_token"))
        .unwrap_or_else(|e| panic!("{e}"));
    let revoked_at = now_f64();
    let refused_at = loop {
        let sent = now_f64();
        let res = s.hello(&revoked);
        if res.status == 401 {
            assert_invalid_token(&res, "revoked token");
            break sent;
        }
        assert_service_allowed(&s, &res, "revoked token, still cached");
        assert!(
            sent < cached_at + cache + 1.0,
            "[{kind:?}] a token revoked at the OP still accepted {:.1} s after it was cached \
             (cache_seconds {CACHE_SECONDS})",
            sent - cached_at
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "[{kind:?}] revoked token refused {:.2} s after the revocation ({:.2} s after it was cached)",
        refused_at - revoked_at,
        refused_at - cached_at
    );
    for i in 0..4 {
        assert_invalid_token(&s.hello(&revoked), &format!("revoked token again #{i}"));
    }

    // -- the OP's introspection failing
    let cached = s.opaque_token();
    let cached_from = now_f64();
    assert_service_allowed(&s, &s.hello(&cached), "cached before the failure");
    let cached_until = now_f64() + cache;
    s.op()
        .set_introspection_failing(true)
        .unwrap_or_else(|e| panic!("{e}"));
    let fresh = s.opaque_token();
    let before = s.introspections();
    let unavailable_before = s.counter("denied.introspection_unavailable");
    let failed_before = s.counter("introspection_call_failed");
    assert_unavailable(&s.hello(&fresh), "a token never cached, OP failing");
    assert_unavailable(&s.hello(&fresh), "again, OP failing");
    assert_eq!(
        s.introspections(),
        before + 2,
        "[{kind:?}] a failed introspection is not cached: asked again"
    );
    assert_eq!(
        s.counter("denied.introspection_unavailable"),
        unavailable_before + 2
    );
    assert_eq!(s.counter("introspection_call_failed"), failed_before + 2);
    // the token cached before: 200 within its cache time (at least cache_seconds - 1 s), then 503
    let mut last_200 = None;
    let mut first_503 = None;
    loop {
        let sent = now_f64();
        if sent > cached_until + 0.5 {
            break;
        }
        let res = s.hello(&cached);
        if res.status == 200 {
            assert!(
                first_503.is_none(),
                "[{kind:?}] the cached token accepted again after a 503"
            );
            assert!(
                sent < cached_until,
                "[{kind:?}] a stale positive: accepted {:.2} s after its answer died",
                sent - cached_until
            );
            last_200 = Some(sent);
        } else {
            assert_unavailable(&res, "the cached token after its cache time, OP failing");
            // the answer lived until floor(now) + cache_seconds > cached_from + cache_seconds - 1
            let got = now_f64();
            assert!(
                got >= cached_from + cache - 1.0,
                "[{kind:?}] the cached token refused {:.2} s after it was cached, before its \
                 cache time ended",
                sent - cached_from
            );
            first_503.get_or_insert(sent);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let last_200 = last_200.expect("the cached token was never accepted while the OP failed");
    let first_503 = first_503.expect("the cached token never refused after its cache time");
    println!(
        "[{kind:?}] OP failing: cached token accepted until +{:.2} s, 503 from +{:.2} s (cache_seconds {CACHE_SECONDS})",
        last_200 - cached_from,
        first_503 - cached_from
    );
    assert_unavailable(&s.hello(&cached), "the cached token, OP still failing");

    // -- the OP back: both tokens accepted
    s.op()
        .set_introspection_failing(false)
        .unwrap_or_else(|e| panic!("{e}"));
    let fresh_cached_from = now_f64();
    assert_service_allowed(&s, &s.hello(&fresh), "OP back, the token never cached");
    assert_service_allowed(&s, &s.hello(&cached), "OP back, the token cached before");

    // -- the OP stopped (its process killed): a token never seen → 503 with Retry-After
    let spare = s.opaque_token();
    s.op_proc = None;
    let failed_before = s.counter("introspection_call_failed");
    assert_unavailable(&s.hello(&spare), "OP stopped, a token never cached");
    assert_eq!(s.counter("introspection_call_failed"), failed_before + 1);
    // a token cached less than cache_seconds - 1 s ago still works
    let res = s.hello(&fresh);
    if now_f64() < fresh_cached_from + cache - 1.0 {
        assert_service_allowed(&s, &res, "OP stopped, a token cached just before");
    }
}

#[test]
fn opaque_tokens_wasm() {
    opaque_tokens(Kind::Wasm);
}

#[test]
fn opaque_tokens_native() {
    opaque_tokens(Kind::Native);
}

// ---------------------------------------------------------------------------------------------
// 2. introspect: "always" with an OP that does not introspect its JWTs

/// `introspect: "always"` is for IDPs that introspect their own JWT access tokens (to see a
/// revocation at once). oidc-provider refuses to (400 `unsupported_token_type`, "Structured JWT
/// Tokens cannot be introspected"), so the gateway never gets a usable answer for a JWT that its
/// local checks accept: 503 with `Retry-After`, never a 200 on the local checks alone. Configure
/// this mode only in front of an IDP that introspects its JWTs.
fn introspect_always_with_jwts(kind: Kind) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| ProviderShape {
        audiences: vec![RESOURCE_ES256, RESOURCE_RS256],
        introspection: introspection(
            op.port(),
            json!({"introspect": "always", "cache_seconds": 30}),
        ),
        jwks: true,
        dpop: None,
        extra: Value::Null,
    });
    for resource in [RESOURCE_ES256, RESOURCE_RS256] {
        let jwt = s
            .op()
            .client_credentials(resource)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jwt.split('.').count(), 3, "not a JWT: {jwt}");
        let refusal = s
            .op()
            .introspect(&jwt)
            .expect_err("the OP introspected a JWT");
        assert!(
            refusal.contains("400") && refusal.contains("unsupported_token_type"),
            "the OP's answer to the introspection of a JWT: {refusal}"
        );
        let before = s.introspections();
        let unavailable_before = s.counter("denied.introspection_unavailable");
        for i in 0..3 {
            assert_unavailable(&s.hello(&jwt), &format!("[{kind:?}] {resource} JWT #{i}"));
        }
        assert_eq!(
            s.introspections(),
            before + 3,
            "[{kind:?}] {resource}: every request asks (a refusal is not cached)"
        );
        assert_eq!(
            s.counter("denied.introspection_unavailable"),
            unavailable_before + 3
        );
    }
    assert_eq!(s.counter("allowed"), 0);
    // a tampered JWT is refused by the local checks before any introspection
    let jwt = s
        .op()
        .client_credentials(RESOURCE_ES256)
        .unwrap_or_else(|e| panic!("{e}"));
    let before = s.introspections();
    let tampered = format!("{}AAAA", jwt);
    let res = s.hello(&tampered);
    assert_invalid_token(&res, "tampered JWT");
    assert_eq!(
        s.introspections(),
        before,
        "[{kind:?}] a JWT refused locally is not introspected"
    );
}

#[test]
fn introspect_always_with_jwts_wasm() {
    introspect_always_with_jwts(Kind::Wasm);
}

#[test]
fn introspect_always_with_jwts_native() {
    introspect_always_with_jwts(Kind::Native);
}

// ---------------------------------------------------------------------------------------------
// 3. RFC 9701: JWT introspection answers, verified with the OP's keys

fn jwt_introspection_response(kind: Kind) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| ProviderShape {
        audiences: vec![RESOURCE_OPAQUE],
        introspection: introspection(
            op.port(),
            json!({"jwt_response": true, "cache_seconds": 30}),
        ),
        // the answers are signed with the OP's keys
        jwks: true,
        dpop: None,
        extra: Value::Null,
    });
    // Wasm: a worker VM takes the fetched keys from shared data on its next tick (100 ms); an
    // RFC 9701 answer verified before that is a 503 (the answer path does not look at shared data
    // again, unlike a JWT's "unknown key" path): seen 2 times in 8 runs without this pause.
    std::thread::sleep(Duration::from_millis(300));
    let token = s.opaque_token();
    // what the OP answers the gateway's client (RS256, typ token-introspection+jwt, aud gateway)
    let answer = s
        .op()
        .introspect_jwt(&token)
        .unwrap_or_else(|e| panic!("{e}"));
    let (header, claims) = e2e::oidc_provider::decode_jwt(&answer).unwrap();
    assert_eq!(header["typ"], "token-introspection+jwt", "{header}");
    assert_eq!(claims["aud"], "gateway", "{claims}");
    assert_eq!(claims["token_introspection"]["active"], true, "{claims}");

    let before = s.introspections();
    for i in 0..5 {
        assert_service_allowed(&s, &s.hello(&token), &format!("RFC 9701 answer #{i}"));
    }
    assert_eq!(
        s.introspections(),
        before + 1,
        "[{kind:?}] one introspection (a JWT answer) for 5 requests"
    );
    assert_eq!(s.counter("introspection_call_ok"), 1);

    let garbage = unique("garbage-opaque-token");
    assert_invalid_token(&s.hello(&garbage), "garbage token, RFC 9701 answer");
    assert_eq!(s.introspections(), before + 2);
    assert_eq!(s.counter("denied.inactive"), 1);
}

#[test]
fn jwt_introspection_response_wasm() {
    jwt_introspection_response(Kind::Wasm);
}

#[test]
fn jwt_introspection_response_native() {
    jwt_introspection_response(Kind::Native);
}

// ---------------------------------------------------------------------------------------------
// 4. Concurrent first requests for one token: one call in flight per token (issue 26 §3)

/// Issue 26 §3 asks for "one call in flight per token". Measured 2026-12-04 (filter at 70e31c6):
/// 8 concurrent first requests with one token make 8 introspection calls on both modules (each
/// request that misses the cache asks; nothing joins a call already in flight).
fn concurrent_first_requests_share_one_call(kind: Kind) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| ProviderShape {
        audiences: vec![RESOURCE_OPAQUE],
        introspection: introspection(op.port(), json!({"cache_seconds": 30})),
        jwks: false,
        dpop: None,
        extra: Value::Null,
    });
    for round in 0..3 {
        let token = s.opaque_token();
        let before = s.introspections();
        let barrier = std::sync::Barrier::new(8);
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        s.hello(&token).status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let calls = s.introspections() - before;
        println!(
            "[{kind:?}] round {round}: 8 concurrent first requests {statuses:?}, {calls} introspection(s)"
        );
        assert!(statuses.iter().all(|&st| st == 200), "{statuses:?}");
        assert_eq!(
            calls, 1,
            "[{kind:?}] 8 concurrent first requests with one token: one call in flight per token"
        );
    }
}

#[test]
#[ignore = "known gap (2026-12-04, filters 70e31c6 to 19e58c8): no call-in-flight coalescing, 8 concurrent first requests make 8 introspections; run with --ignored"]
fn concurrent_first_requests_share_one_call_wasm() {
    concurrent_first_requests_share_one_call(Kind::Wasm);
}

#[test]
#[ignore = "known gap (2026-12-04, filters 70e31c6 to 19e58c8): no call-in-flight coalescing, 8 concurrent first requests make 8 introspections; run with --ignored"]
fn concurrent_first_requests_share_one_call_native() {
    concurrent_first_requests_share_one_call(Kind::Native);
}

// ---------------------------------------------------------------------------------------------
// 5. Answers oidc-provider cannot be made to give: a scripted introspection endpoint

/// The issuer the scripted endpoint speaks for.
const SCRIPTED_ISSUER: &str = "https://scripted-op.invalid";
const SCRIPTED_AUDIENCE: &str = "urn:gateway:scripted";

/// A loopback introspection endpoint (a thread of the test) whose answer depends on the token's
/// prefix: `ok-` active; `noiss-` active without `iss`; `otheriss-` another issuer; `otheraud-`
/// another audience; `big-` active with more than 4 KiB of claims; `leeway-` active, `exp` one
/// second ago; `slow-` never answers; anything else inactive. Counts the calls per token. With a
/// signing key set, answers asked as `application/token-introspection+jwt` are RFC 9701 JWTs,
/// and `GET /jwks` publishes the keys set by [`ScriptedOp::publish`].
struct ScriptedOp {
    port: u16,
    state: Arc<Mutex<Scripted>>,
    stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct Scripted {
    calls: HashMap<String, u64>,
    jwks_fetches: u64,
    /// The keys `GET /jwks` publishes (`Issuer::es256` seed, kid).
    published: Vec<(u8, String)>,
    /// The key RFC 9701 answers are signed with.
    signer: Option<(u8, String)>,
}

impl ScriptedOp {
    fn start() -> ScriptedOp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(Scripted::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, st) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let c = Arc::clone(&c);
                        std::thread::spawn(move || serve_scripted(conn, &c));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        ScriptedOp { port, state, stop }
    }

    fn calls(&self, token: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(token)
            .copied()
            .unwrap_or(0)
    }

    fn jwks_fetches(&self) -> u64 {
        self.state.lock().unwrap().jwks_fetches
    }

    /// Publishes `keys` at `/jwks` and signs RFC 9701 answers with `signer`.
    fn publish(&self, keys: &[(u8, &str)], signer: (u8, &str)) {
        let mut state = self.state.lock().unwrap();
        state.published = keys.iter().map(|(s, k)| (*s, (*k).to_owned())).collect();
        state.signer = Some((signer.0, signer.1.to_owned()));
    }
}

impl Drop for ScriptedOp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn respond(conn: &mut TcpStream, content_type: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
}

/// One connection: reads one request (headers, then `content-length` bytes), answers, closes.
fn serve_scripted(mut conn: TcpStream, state: &Mutex<Scripted>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if head.starts_with("get /jwks ") {
        let mut state = state.lock().unwrap();
        state.jwks_fetches += 1;
        let keys: Vec<Issuer> = state
            .published
            .iter()
            .map(|(seed, kid)| Issuer::es256(*seed, kid))
            .collect();
        drop(state);
        let body = test_support::jwks(&keys.iter().collect::<Vec<_>>()).to_string();
        respond(&mut conn, "application/json", &body);
        return;
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let form: HashMap<String, String> =
        serde_urlencoded::from_bytes(&buf[head_end..head_end + length]).unwrap_or_default();
    let token = form.get("token").cloned().unwrap_or_default();
    let signer = {
        let mut state = state.lock().unwrap();
        *state.calls.entry(token.clone()).or_insert(0) += 1;
        state.signer.clone()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // a JWT (introspect: always) is answered by its `sub`
    let jwt_sub = e2e::oidc_provider::decode_jwt(&token)
        .ok()
        .and_then(|(_, claims)| claims["sub"].as_str().map(str::to_owned));
    let prefix = jwt_sub
        .as_deref()
        .unwrap_or_else(|| token.split('-').next().unwrap_or(""));
    let mut answer = json!({
        "active": true,
        "iss": SCRIPTED_ISSUER,
        "aud": SCRIPTED_AUDIENCE,
        "client_id": "scripted-client",
        "sub": prefix,
        "scope": "api",
        "iat": now,
        "exp": now + 300,
    });
    match prefix {
        "ok" => {}
        "noiss" => {
            answer.as_object_mut().map(|a| a.remove("iss"));
        }
        "otheriss" => answer["iss"] = json!("https://elsewhere.invalid"),
        "otheraud" => answer["aud"] = json!("urn:gateway:someone-else"),
        "big" => answer["padding"] = json!("x".repeat(5000)),
        "huge" => answer["padding"] = json!("x".repeat(20_000)),
        "leeway" => answer["exp"] = json!(now - 1),
        "notjson" => {
            respond(&mut conn, "text/html", "<html>maintenance</html>");
            return;
        }
        "activestring" => answer["active"] = json!("true"),
        // `short-EXP-…`: active until EXP
        "short" => {
            let exp: u64 = token
                .split('-')
                .nth(1)
                .and_then(|e| e.parse().ok())
                .unwrap_or(0);
            if now < exp {
                answer["exp"] = json!(exp);
            } else {
                answer = json!({"active": false});
            }
        }
        "slow" => {
            std::thread::sleep(Duration::from_secs(4));
            return;
        }
        _ => answer = json!({"active": false}),
    }
    match signer {
        Some((seed, kid)) if head.contains("accept: application/token-introspection+jwt") => {
            let key = Issuer::es256(seed, &kid);
            let header = json!({"alg": "ES256", "typ": "token-introspection+jwt", "kid": kid});
            let claims = json!({
                "iss": SCRIPTED_ISSUER, "aud": "gateway", "iat": now, "token_introspection": answer
            });
            let jwt = key.sign(&header, &claims);
            respond(&mut conn, "application/token-introspection+jwt", &jwt);
        }
        _ => respond(&mut conn, "application/json", &answer.to_string()),
    }
}

fn scripted_setup(kind: Kind) -> (ScriptedOp, Setup) {
    let op = ScriptedOp::start();
    let shape = ProviderShape {
        audiences: vec![SCRIPTED_AUDIENCE],
        introspection: introspection(
            op.port,
            json!({"cache_seconds": 30, "negative_cache_seconds": 5, "timeout_ms": 1000}),
        ),
        jwks: false,
        dpop: None,
        extra: Value::Null,
    };
    let s = Setup::launch(
        kind,
        None,
        SCRIPTED_ISSUER,
        op.port,
        free_port().unwrap(),
        &shape,
    );
    (op, s)
}

/// Answers the RFC allows and the gateway must judge: `iss` absent (the provider's assumed),
/// another issuer or audience (refused), an `exp` before `cache_seconds` ends (asked again after
/// `exp`: never a positive past it), no answer within `timeout_ms` (503).
fn scripted_answers(kind: Kind) {
    let _slot = crate::slot();
    let (op, s) = scripted_setup(kind);

    let ok = unique("ok");
    for i in 0..3 {
        let res = s.hello(&ok);
        assert_eq!(res.status, 200, "[{kind:?}] ok #{i}: {}", res.body);
    }
    assert_eq!(op.calls(&ok), 1, "[{kind:?}] ok: cached");

    // RFC 7662 §2.2: `iss` is optional; the provider's issuer is forwarded
    let noiss = unique("noiss");
    let res = s.hello(&noiss);
    assert_eq!(res.status, 200, "[{kind:?}] no iss: {}", res.body);
    let body = res.json().unwrap();
    assert_eq!(body["issuer"], SCRIPTED_ISSUER, "[{kind:?}] {body}");
    assert_eq!(body["sub"], "noiss", "[{kind:?}] {body}");
    assert_eq!(body["client_id"], "scripted-client", "[{kind:?}] {body}");

    let otheriss = unique("otheriss");
    let res = s.hello(&otheriss);
    assert_invalid_token(&res, "another issuer in the answer");

    let otheraud = unique("otheraud");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(s.hello(&otheraud).status);
    }
    assert!(
        statuses.iter().all(|&st| st == 401 || st == 403),
        "[{kind:?}] another audience: {statuses:?}"
    );
    // a refused active answer is not cached: every request asks again
    println!(
        "[{kind:?}] another audience: {statuses:?}, {} introspection(s) for 3 requests",
        op.calls(&otheraud)
    );

    // an answer whose exp (now + 2 s) comes before cache_seconds (30) ends
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 2;
    let short = unique(&format!("short-{exp}"));
    for i in 0..3 {
        let res = s.hello(&short);
        assert_eq!(res.status, 200, "[{kind:?}] short #{i}: {}", res.body);
    }
    assert_eq!(op.calls(&short), 1, "[{kind:?}] short: cached until exp");
    sleep_until(exp as f64 + 0.1);
    assert_invalid_token(&s.hello(&short), "after the answer's exp");
    assert_eq!(
        op.calls(&short),
        2,
        "[{kind:?}] after exp the token is asked again (kept until min(exp, cache_seconds))"
    );

    // claims over 4 KiB are kept (up to 16 KiB); more is refused (503), never used uncached
    let big = unique("big");
    for i in 0..2 {
        let res = s.hello(&big);
        assert_eq!(
            res.status, 200,
            "[{kind:?}] 5 KB of claims #{i}: {}",
            res.body
        );
    }
    assert_eq!(op.calls(&big), 1, "[{kind:?}] 5 KB of claims: kept");
    let huge = unique("huge");
    for i in 0..2 {
        assert_unavailable(&s.hello(&huge), &format!("20 KB of claims #{i}"));
    }
    assert_eq!(op.calls(&huge), 2, "[{kind:?}] 20 KB of claims: not kept");

    // active, but its exp came one second ago (within the 5 s leeway a JWT gets): expired, 401
    let leeway = unique("leeway");
    for i in 0..2 {
        assert_invalid_token(&s.hello(&leeway), &format!("active, exp 1 s ago #{i}"));
    }

    // no usable answer: 503, never taken for a positive one, not cached
    for prefix in ["notjson", "activestring"] {
        let token = unique(prefix);
        for i in 0..2 {
            assert_unavailable(&s.hello(&token), &format!("{prefix} #{i}"));
        }
        assert_eq!(op.calls(&token), 2, "[{kind:?}] {prefix}: not cached");
    }

    // 32 tokens first seen at once (8 threads): every answer kept (no write lost to the shared
    // cache's compare-and-set), so a second pass asks nothing
    let tokens: Vec<String> = (0..32).map(|i| unique(&format!("ok-{i}"))).collect();
    std::thread::scope(|scope| {
        for chunk in tokens.chunks(4) {
            let s = &s;
            scope.spawn(move || {
                for t in chunk {
                    assert_eq!(s.hello(t).status, 200, "[{kind:?}] {t}");
                }
            });
        }
    });
    for t in &tokens {
        assert_eq!(s.hello(t).status, 200, "[{kind:?}] {t} again");
    }
    let calls: Vec<u64> = tokens.iter().map(|t| op.calls(t)).collect();
    assert!(
        calls.iter().all(|&c| c == 1),
        "[{kind:?}] introspections per token after two passes: {calls:?}"
    );

    let slow = unique("slow");
    let started = Instant::now();
    assert_unavailable(&s.hello(&slow), "no answer within timeout_ms");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(3000),
        "[{kind:?}] the 503 for a silent endpoint came after {took:?} (timeout_ms 1000)"
    );
    assert_eq!(s.counter("denied.introspection_unavailable"), 7);
}

#[test]
fn scripted_answers_wasm() {
    scripted_answers(Kind::Wasm);
}

#[test]
fn scripted_answers_native() {
    scripted_answers(Kind::Native);
}

// ---------------------------------------------------------------------------------------------
// 6. DPoP-bound opaque tokens of the OP: the binding comes from the answer's `cnf.jkt`

/// A DPoP proof by `key` for `htm` `htu` (with `ath` of `token` when given).
fn dpop_proof(key: &Issuer, htm: &str, htu: &str, token: Option<&str>) -> String {
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut claims = json!({"htm": htm, "htu": htu, "iat": iat, "jti": unique("jti")});
    if let Some(token) = token {
        claims["ath"] = json!(ath(token));
    }
    key.proof(&claims)
}

fn dpop_bound_opaque_tokens(kind: Kind) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| ProviderShape {
        audiences: vec![RESOURCE_OPAQUE],
        introspection: introspection(op.port(), json!({"cache_seconds": 30})),
        jwks: false,
        dpop: Some("allowed"),
        extra: Value::Null,
    });
    // the provider accepts DPoP (and bearer tokens that are not bound)
    let key = Issuer::es256(51, "dpop-client");
    let other = Issuer::es256(52, "another-client");

    // a DPoP-bound opaque token from the OP (client_credentials with a proof)
    let token_url = s.op().token_url();
    let proof = dpop_proof(&key, "POST", &token_url, None);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("service:{SERVICE_SECRET}"))
    );
    let res = client::post_form(
        &token_url,
        &[("authorization", basic.as_str()), ("dpop", proof.as_str())],
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api"),
            ("resource", RESOURCE_OPAQUE),
        ],
    )
    .unwrap();
    assert_eq!(res.status, 200, "DPoP token request: {}", res.body);
    let body = res.json().unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let bound = body["access_token"].as_str().unwrap().to_owned();
    assert!(!bound.contains('.'), "not opaque: {bound}");
    let answer = s.op().introspect(&bound).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer["cnf"]["jkt"], key.thumbprint(), "{answer}");

    let url = format!("{}/api/hello", s.url);
    let send = |scheme: &str, proof: Option<String>| {
        let auth = format!("{scheme} {bound}");
        let mut headers = vec![("authorization", auth.clone())];
        if let Some(p) = proof {
            headers.push(("dpop", p));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        client::get(&url, &headers).unwrap()
    };
    let before = s.introspections();
    for i in 0..3 {
        let res = send("DPoP", Some(dpop_proof(&key, "GET", &url, Some(&bound))));
        assert_service_allowed(
            &s,
            &res,
            &format!("DPoP-bound opaque token with its proof #{i}"),
        );
    }
    assert_eq!(s.introspections(), before + 1, "[{kind:?}] cached");

    // as a bearer token, without a proof: refused
    let res = send("Bearer", None);
    assert_invalid_token(&res, "DPoP-bound opaque token as a bearer token");
    // a proof by another key: refused
    let res = send("DPoP", Some(dpop_proof(&other, "GET", &url, Some(&bound))));
    assert_eq!(
        res.status, 401,
        "[{kind:?}] proof by another key: {}",
        res.body
    );
    // no proof with the DPoP scheme: refused
    let res = send("DPoP", None);
    assert_eq!(
        res.status, 401,
        "[{kind:?}] DPoP scheme, no proof: {}",
        res.body
    );
    // a proof for another URI: refused
    let res = send(
        "DPoP",
        Some(dpop_proof(
            &key,
            "GET",
            &format!("{}/api/other", s.url),
            Some(&bound),
        )),
    );
    assert_eq!(
        res.status, 401,
        "[{kind:?}] proof for another htu: {}",
        res.body
    );
    assert_eq!(s.counter("denied.dpop_key_mismatch"), 1);
    assert_eq!(s.counter("denied.dpop_bound_token_as_bearer"), 1);
    assert_eq!(
        s.introspections(),
        before + 1,
        "[{kind:?}] the refusals were decided on the cached answer"
    );

    // an unbound opaque token stays a bearer token
    let unbound = s.opaque_token();
    assert_service_allowed(&s, &s.hello(&unbound), "unbound opaque token");
}

#[test]
fn dpop_bound_opaque_tokens_wasm() {
    dpop_bound_opaque_tokens(Kind::Wasm);
}

#[test]
fn dpop_bound_opaque_tokens_native() {
    dpop_bound_opaque_tokens(Kind::Native);
}

/// The OP rotated its signing key: it publishes the new key in its JWKS, then signs RFC 9701
/// answers with it. A JWT access token with an unknown `kid` makes the gateway fetch the JWKS
/// early (throttled by `min_early_refresh_seconds`, 1 s here); an introspection answer with an
/// unknown `kid` does too (503 meanwhile), not only the next scheduled refresh (`refresh_seconds`,
/// 300 s here). Before 19e58c8 every such answer was a 503 until then.
fn rotated_key_answers(kind: Kind) {
    let _slot = crate::slot();
    let op = ScriptedOp::start();
    op.publish(&[(61, "key-a")], (61, "key-a"));
    let shape = ProviderShape {
        audiences: vec![SCRIPTED_AUDIENCE],
        introspection: introspection(
            op.port,
            json!({"jwt_response": true, "cache_seconds": 30, "timeout_ms": 1000}),
        ),
        jwks: true,
        dpop: None,
        extra: Value::Null,
    };
    let s = Setup::launch(
        kind,
        None,
        SCRIPTED_ISSUER,
        op.port,
        free_port().unwrap(),
        &shape,
    );
    // every worker picks the keys up on its next tick (100 ms)
    std::thread::sleep(Duration::from_millis(300));
    let first = unique("ok");
    let res = s.hello(&first);
    assert_eq!(
        res.status, 200,
        "[{kind:?}] answer signed by key-a: {}",
        res.body
    );
    let fetches = op.jwks_fetches();

    // the rotation: key-b published, answers signed by key-b
    op.publish(&[(61, "key-a"), (62, "key-b")], (62, "key-b"));
    std::thread::sleep(Duration::from_millis(1100));
    let rotated = unique("ok");
    let started = Instant::now();
    let mut statuses = Vec::new();
    let accepted = loop {
        let res = s.hello(&rotated);
        statuses.push(res.status);
        if res.status == 200 {
            break true;
        }
        if started.elapsed() > Duration::from_secs(4) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    println!(
        "[{kind:?}] answers signed by the new key: {statuses:?}, JWKS fetches {fetches} -> {}",
        op.jwks_fetches()
    );
    // for comparison: a JWT access token signed by the new key
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let jwt = Issuer::es256(62, "key-b").token(&json!({
        "iss": SCRIPTED_ISSUER, "aud": SCRIPTED_AUDIENCE, "sub": "jwt", "client_id": "scripted-client",
        "scope": "api", "iat": now, "exp": now + 300
    }));
    let mut jwt_statuses = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        let status = s.hello(&jwt).status;
        jwt_statuses.push(status);
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let after = s.hello(&unique("ok")).status;
    println!(
        "[{kind:?}] a JWT access token signed by the new key: {jwt_statuses:?} (JWKS fetches now {}); \
         then an answer signed by the new key: {after}",
        op.jwks_fetches()
    );
    assert!(
        accepted,
        "[{kind:?}] an RFC 9701 answer signed by the OP's new (published) key is still refused \
         4 s after the rotation: {statuses:?}; JWKS fetches {fetches} -> {}",
        op.jwks_fetches()
    );
}

#[test]
fn rotated_key_answers_wasm() {
    rotated_key_answers(Kind::Wasm);
}

#[test]
fn rotated_key_answers_native() {
    rotated_key_answers(Kind::Native);
}

// ---------------------------------------------------------------------------------------------
// 7. introspect: "always" with an IDP that introspects its JWTs (the scripted endpoint)

/// What `introspect: "always"` is for: the IDP's JWTs are validated locally and then
/// introspected, so that a token the IDP revoked is refused at once (here: the endpoint answers
/// by the JWT's `sub`). A JWT the local checks refuse is never introspected.
fn introspect_always_scripted(kind: Kind) {
    let _slot = crate::slot();
    let op = ScriptedOp::start();
    op.publish(&[(71, "key-a")], (71, "key-a"));
    let shape = ProviderShape {
        audiences: vec![SCRIPTED_AUDIENCE],
        introspection: introspection(
            op.port,
            json!({"introspect": "always", "cache_seconds": 30, "timeout_ms": 1000}),
        ),
        jwks: true,
        dpop: None,
        extra: Value::Null,
    };
    let s = Setup::launch(
        kind,
        None,
        SCRIPTED_ISSUER,
        op.port,
        free_port().unwrap(),
        &shape,
    );
    let key = Issuer::es256(71, "key-a");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let jwt = |sub: &str| {
        key.token(&json!({
            "iss": SCRIPTED_ISSUER, "aud": SCRIPTED_AUDIENCE, "sub": sub,
            "client_id": "scripted-client", "scope": "api", "iat": now, "exp": now + 300,
            "jti": unique("jti")
        }))
    };
    // the JWT path syncs the keys on an unknown key: no pause needed
    let active = jwt("ok");
    for i in 0..3 {
        let res = s.hello(&active);
        assert_eq!(res.status, 200, "[{kind:?}] active JWT #{i}: {}", res.body);
        assert_eq!(res.json().unwrap()["sub"], "ok");
    }
    assert_eq!(op.calls(&active), 1, "[{kind:?}] cached once per Envoy");

    // revoked at the IDP: the signature and claims are fine, the answer says inactive
    let revoked = jwt("revoked");
    for i in 0..2 {
        assert_invalid_token(&s.hello(&revoked), &format!("JWT inactive at the IDP #{i}"));
    }
    assert_eq!(op.calls(&revoked), 1, "[{kind:?}] inactive: kept");
    assert_eq!(s.counter("denied.inactive"), 2);

    // refused locally (another audience), never introspected
    let other = key.token(&json!({
        "iss": SCRIPTED_ISSUER, "aud": "urn:someone-else", "sub": "ok", "iat": now,
        "exp": now + 300
    }));
    let res = s.hello(&other);
    assert!(
        res.status == 401 || res.status == 403,
        "[{kind:?}] another audience: {}",
        res.status
    );
    assert_eq!(
        op.calls(&other),
        0,
        "[{kind:?}] refused locally: not introspected"
    );
    assert_eq!(s.counter("introspection_call_ok"), 2);
}

#[test]
fn introspect_always_scripted_wasm() {
    introspect_always_scripted(Kind::Wasm);
}

#[test]
fn introspect_always_scripted_native() {
    introspect_always_scripted(Kind::Native);
}

// ---------------------------------------------------------------------------------------------
// 8. Logout through the gateway with an opaque token: refused at once, not after cache_seconds

/// The demo resource server's default secret for the gateway's session revocation.
const RS_SECRET: &str = "demo-gateway-to-rs-secret-0123456789";

/// A user's opaque token (cached by the gateway) and a sibling of the same session: the
/// gateway's logout revokes the token at the OP (which can revoke opaque tokens) and cuts the
/// session off on this Envoy, so both are refused on the next request, although their answers
/// are cached for 30 s. (Before d0cf543 the logout was refused with 401 `invalid token` on both
/// modules: `gateway::logout_subject` validated the token as a JWT only.)
fn logout_with_an_opaque_token(kind: Kind, used_before: bool) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| {
        let authority = format!("127.0.0.1:{}", op.port());
        ProviderShape {
            audiences: vec![RESOURCE_OPAQUE],
            introspection: introspection(op.port(), json!({"cache_seconds": 30})),
            jwks: false,
            dpop: None,
            extra: json!({
                "provider": {
                    "max_token_lifetime_seconds": 600,
                    "revoke": {
                        "cluster": "op", "path": "/token/revocation", "authority": authority,
                        "timeout_ms": 3000, "client_id": "gateway", "client_secret": GATEWAY_SECRET
                    }
                },
                "filter": {
                    "logout": {
                        "path": "/oauth2/logout",
                        "resource_server": {
                            "cluster": "resource_server", "path": "/internal/sessions/revoke",
                            "secret_header": "x-gateway-secret", "secret": RS_SECRET,
                            "timeout_ms": 3000
                        }
                    }
                }
            }),
        }
    });
    let user = s
        .op()
        .login("erin", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    let refreshed = s
        .op()
        .refresh(&user.refresh_token)
        .unwrap_or_else(|e| panic!("{e}"));
    let sibling = refreshed["access_token"].as_str().unwrap().to_owned();
    assert!(!sibling.contains('.'), "{sibling}");
    let before: &[&String] = if used_before {
        &[&user.access_token, &sibling]
    } else {
        &[&sibling]
    };
    for token in before {
        let res = s.hello(token);
        assert_eq!(res.status, 200, "[{kind:?}] before logout: {}", res.body);
        assert_eq!(res.json().unwrap()["sid"], user.sid.as_str());
    }
    let (_, revocations_before) = s.op().counters().unwrap();

    let auth = format!("Bearer {}", user.access_token);
    let logout = || {
        client::post_form(
            &format!("{}/oauth2/logout", s.url),
            &[("authorization", auth.as_str())],
            &[],
        )
        .unwrap()
    };
    let mut res = logout();
    println!(
        "[{kind:?}] logout with an opaque token: {} {}",
        res.status, res.body
    );
    let mut statuses = vec![res.status];
    // a 503 says "try again shortly": do, after its Retry-After
    for _ in 0..2 {
        if res.status != 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1100));
        res = logout();
        statuses.push(res.status);
    }
    assert_eq!(
        res.status, 200,
        "[{kind:?}] logout (statuses {statuses:?}): {}",
        res.body
    );
    assert_eq!(res.json().unwrap()["status"], "logged_out", "{}", res.body);
    let (_, revocations_after) = s.op().counters().unwrap();
    assert_eq!(
        revocations_after,
        revocations_before + 1,
        "[{kind:?}] OP revocation"
    );
    // the OP says so too
    let answer = s.op().introspect(&user.access_token).unwrap();
    assert_eq!(answer["active"], false, "{answer}");

    // refused at once on this Envoy (both workers), although the answers are cached for 30 s
    for i in 0..6 {
        for (what, token) in [("the token", &user.access_token), ("its sibling", &sibling)] {
            let res = s.hello(token);
            assert_eq!(
                res.status, 401,
                "[{kind:?}] {what} after logout #{i}: {} {}",
                res.status, res.body
            );
            let challenge = res.header("www-authenticate").unwrap_or("");
            assert!(challenge.contains("invalid_token"), "{challenge}");
        }
    }
    // a new login of the same user is a new session
    let again = s
        .op()
        .login("erin", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    let res = s.hello(&again.access_token);
    assert_eq!(res.status, 200, "[{kind:?}] new session: {}", res.body);
}

#[test]
fn logout_with_an_opaque_token_wasm() {
    logout_with_an_opaque_token(Kind::Wasm, true);
}

#[test]
fn logout_with_an_opaque_token_native() {
    logout_with_an_opaque_token(Kind::Native, true);
}

/// The same logout with a token the gateway has not introspected yet (a user who logs out
/// without calling the API through this Envoy first, or after the answer's cache time). d0cf543
/// answers 503 ("when there is none yet"), and since logout never asks the OP, a retry gets the
/// same 503 for as long as no API request brings the answer: the logout should introspect it.
/// Measured 2026-12-04 (filter d0cf543), both modules: `[503, 503, 503]` over 2.2 s, nothing
/// revoked at the OP.
#[test]
#[ignore = "known gap (2026-12-04, filter d0cf543): logout with an opaque token the gateway has no answer for is a 503 (logout does not introspect); run with --ignored"]
fn logout_with_a_fresh_opaque_token_wasm() {
    logout_with_an_opaque_token(Kind::Wasm, false);
}

#[test]
#[ignore = "known gap (2026-12-04, filter d0cf543): logout with an opaque token the gateway has no answer for is a 503 (logout does not introspect); run with --ignored"]
fn logout_with_a_fresh_opaque_token_native() {
    logout_with_an_opaque_token(Kind::Native, false);
}

// ---------------------------------------------------------------------------------------------
// 9. The OP's back-channel logout ends a session of opaque tokens, cached or not

const BACKCHANNEL_PATH: &str = "/oauth2/backchannel-logout";

/// A user signs out at the OP (`end_session`): the OP posts a logout token to the gateway, whose
/// cut-off of that session (`sid`) refuses the session's opaque tokens at once, although their
/// introspection answers are cached for 30 s; another user's session and a new login pass.
fn backchannel_logout_ends_opaque_sessions(kind: Kind) {
    let _slot = crate::slot();
    let s = Setup::start_with(
        kind,
        |listen| OpOptions {
            backchannel_logout_uri: Some(format!("http://127.0.0.1:{listen}{BACKCHANNEL_PATH}")),
            ..OpOptions::default()
        },
        |op| ProviderShape {
            audiences: vec![RESOURCE_OPAQUE],
            introspection: introspection(op.port(), json!({"cache_seconds": 30})),
            // the logout tokens are signed with the OP's keys
            jwks: true,
            dpop: None,
            extra: json!({
                "provider": {
                    "max_token_lifetime_seconds": 600,
                    "backchannel_logout_audiences": ["webapp"]
                },
                "filter": {
                    "backchannel_logout": {
                        "path": BACKCHANNEL_PATH,
                        "max_body_bytes": 8192,
                        "max_verifications_per_second": 20,
                        "max_token_age_seconds": 600
                    }
                }
            }),
        },
    );
    let user = s
        .op()
        .login("frank", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    let other = s
        .op()
        .login("gina", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    for token in [&user.access_token, &other.access_token] {
        assert!(!token.contains('.'), "{token}");
        let res = s.hello(token);
        assert_eq!(res.status, 200, "[{kind:?}] before: {}", res.body);
    }
    let introspections = s.introspections();

    s.op().end_session(&user).unwrap_or_else(|e| panic!("{e}"));
    let ended = Instant::now();
    loop {
        let res = s.hello(&user.access_token);
        if res.status == 401 {
            assert_invalid_token(&res, "after back-channel logout");
            break;
        }
        assert_eq!(res.status, 200, "[{kind:?}] {}", res.body);
        assert!(
            ended.elapsed() < Duration::from_secs(5),
            "[{kind:?}] the session's opaque token still accepted 5 s after end_session; OP log:\n{}\nEnvoy log:\n{}",
            s.op().log_text(),
            s.envoy.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "[{kind:?}] back-channel logout: the opaque token refused {:?} after end_session returned",
        ended.elapsed()
    );
    for i in 0..6 {
        assert_invalid_token(&s.hello(&user.access_token), &format!("again #{i}"));
    }
    assert_eq!(s.counter("backchannel_logout_ok"), 1);
    let res = s.hello(&other.access_token);
    assert_eq!(
        res.status, 200,
        "[{kind:?}] another user's session: {}",
        res.body
    );
    println!(
        "[{kind:?}] introspections during the refusals: {}",
        s.introspections() - introspections
    );
    let again = s
        .op()
        .login("frank", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    let res = s.hello(&again.access_token);
    assert_eq!(res.status, 200, "[{kind:?}] a new login: {}", res.body);
}

#[test]
fn backchannel_logout_ends_opaque_sessions_wasm() {
    backchannel_logout_ends_opaque_sessions(Kind::Wasm);
}

#[test]
fn backchannel_logout_ends_opaque_sessions_native() {
    backchannel_logout_ends_opaque_sessions(Kind::Native);
}

// ---------------------------------------------------------------------------------------------
// 10. RFC 9701 answers right after start (Wasm: keys taken from shared data on the next tick)

/// Right after the filter fetched the OP's keys (`jwks_fetch_ok`), fresh opaque tokens with
/// RFC 9701 answers: all 200 expected. On the Wasm module a worker VM takes the fetched keys
/// from shared data on its next tick (100 ms); an answer verified before that finds no key
/// (`UnknownKey` → an early fetch, throttled → 503), whereas a JWT's "unknown key" path looks at
/// the shared data again first. Timing-dependent: a window of up to one tick per worker.
/// Measured 2026-12-04 (filter 19e58c8): Wasm `[503, 200, 200, 200, 200, 200]` in 1 run of 5,
/// native all 200 in 5 runs.
fn rfc9701_right_after_start(kind: Kind) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| ProviderShape {
        audiences: vec![RESOURCE_OPAQUE],
        introspection: introspection(op.port(), json!({"jwt_response": true})),
        jwks: true,
        dpop: None,
        extra: Value::Null,
    });
    let tokens: Vec<String> = (0..6).map(|_| s.opaque_token()).collect();
    let statuses: Vec<u16> = tokens.iter().map(|t| s.hello(t).status).collect();
    println!("[{kind:?}] RFC 9701 answers right after start: {statuses:?}");
    assert!(
        statuses.iter().all(|&st| st == 200),
        "[{kind:?}] RFC 9701 answers right after the keys were fetched: {statuses:?}"
    );
}

#[test]
#[ignore = "timing-dependent probe of a Wasm start-up window (see the doc); run with --ignored"]
fn rfc9701_right_after_start_wasm() {
    rfc9701_right_after_start(Kind::Wasm);
}

#[test]
#[ignore = "timing-dependent probe of a Wasm start-up window (see the doc); run with --ignored"]
fn rfc9701_right_after_start_native() {
    rfc9701_right_after_start(Kind::Native);
}
