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
use e2e::process::free_port;
use e2e::third_party::{Build, Gateway};
use serde_json::json;
use std::time::{Duration, Instant};

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

/// The OP, the resource server and Envoy with the filter, stopped when dropped.
struct Setup {
    kind: Build,
    op: OidcProvider,
    gateway: Gateway,
}

impl Setup {
    /// The OP, the resource server, and Envoy whose one provider is `issuer(op)` by discovery.
    fn start(kind: Build, issuer: impl FnOnce(&OidcProvider) -> String) -> Setup {
        Setup::start_with(kind, issuer, false)
    }

    /// As [`Setup::start`]; `endpoints`: see [`filter_config`].
    fn start_with(
        kind: Build,
        issuer: impl FnOnce(&OidcProvider) -> String,
        endpoints: bool,
    ) -> Setup {
        let listen = free_port().unwrap();
        let op = OidcProvider::start(OpOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let config = filter_config(&issuer(&op), endpoints);
        let gateway = Gateway::start(kind, "oauth2gw-discovery-", listen, &config, op.port())
            .unwrap_or_else(|e| panic!("{e}"));
        Setup { kind, op, gateway }
    }

    /// Waits until `done` holds (60 s at most), Envoy still running.
    fn wait_for(&mut self, what: &str, done: impl Fn(&Setup) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                self.gateway.envoy.is_running(),
                "[{:?}] envoy exited; log:\n{}",
                self.kind,
                self.gateway.envoy.log_tail()
            );
            if done(self) {
                return;
            }
            if Instant::now() >= deadline {
                let log = self.gateway.envoy.log_text();
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
        self.gateway.counter(name)
    }

    fn hello(&self, token: Option<&str>) -> u16 {
        self.gateway.get_hello(token).unwrap().status
    }
}

fn the_ops_tokens_are_accepted_by_discovery_alone(kind: Build) {
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

fn a_document_for_another_issuer_leaves_the_provider_unusable(kind: Build) {
    let _slot = crate::slot();
    // The same OP, named by another spelling of its origin: not the document's issuer exactly.
    let mut s = Setup::start(kind, |op| format!("http://localhost:{}", op.port()));
    s.wait_for("the discovery document refused", |s| {
        s.counter("discovery_failed") >= 1
    });
    s.wait_for("the reason in Envoy's log", |s| {
        s.gateway
            .envoy
            .log_text()
            .contains("is not the configured issuer")
    });
    let log = s.gateway.envoy.log_text();
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

fn discovered_endpoints_serve_introspection_and_logout(kind: Build) {
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
        &format!("{}/oauth2/logout", s.gateway.url),
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
    discovered_endpoints_serve_introspection_and_logout(Build::Wasm);
}

#[test]
fn discovered_endpoints_serve_introspection_and_logout_native() {
    discovered_endpoints_serve_introspection_and_logout(Build::Native);
}

#[test]
fn the_ops_tokens_are_accepted_by_discovery_alone_wasm() {
    the_ops_tokens_are_accepted_by_discovery_alone(Build::Wasm);
}

#[test]
fn the_ops_tokens_are_accepted_by_discovery_alone_native() {
    the_ops_tokens_are_accepted_by_discovery_alone(Build::Native);
}

#[test]
fn a_document_for_another_issuer_leaves_the_provider_unusable_wasm() {
    a_document_for_another_issuer_leaves_the_provider_unusable(Build::Wasm);
}

#[test]
fn a_document_for_another_issuer_leaves_the_provider_unusable_native() {
    a_document_for_another_issuer_leaves_the_provider_unusable(Build::Native);
}
