//! A provider with `discovery` may leave the cluster and path of its revocation (logout) and
//! introspection endpoints out: the ones its discovery document names are used, through the
//! cluster discovery resolved them to. Until the document is read, such a logout or
//! introspection answers 503 (nothing revoked, nothing cached); a configured endpoint wins over
//! a discovered one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use filter::config::FilterConfig;
use filter::config::services::Callout;
use filter::logout::{CalloutRequest, LogoutMachine, LogoutSubject, logout_plan};
use filter::shared_state::discovery::DiscoveredEndpoints;
use filter::validation::introspection::request;
use serde_json::Value;

const CLIENT: &str = "\"client_id\": \"gateway\", \"client_secret\": \"gateway-secret-0123456789\"";

fn config(provider_extra: &str) -> Result<FilterConfig, String> {
    let text = format!(
        r#"{{
        "providers": [{{"issuer": "https://op.example", "audiences": ["api"],
                       "algorithms": ["RS256"] {provider_extra}}}],
        "logout": {{"resource_server": {{"cluster": "rs", "path": "/internal/sessions/revoke",
                   "secret_header": "x-gateway-secret", "secret": "rs-secret-0123456789"}}}}
    }}"#
    );
    FilterConfig::from_json(text.as_bytes()).map_err(|e| format!("{}: {}", e.field, e.message))
}

fn discovered() -> DiscoveredEndpoints {
    let at = |path: &str| Callout {
        cluster: "op-origin".into(),
        path: path.into(),
        authority: "op.example".into(),
        timeout_ms: 3_000,
    };
    DiscoveredEndpoints {
        revocation: Some(at("/token/revocation")),
        introspection: Some(at("/token/introspection")),
        end_session: None,
    }
}

/// A call's cluster and `:path`.
fn target(call: &CalloutRequest) -> (&str, &str) {
    let path = call
        .headers
        .iter()
        .find(|(k, _)| k == ":path")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    (call.cluster.as_str(), path)
}

fn subject() -> LogoutSubject<'static> {
    LogoutSubject {
        token: "a.b.c",
        sid: None,
        sub: None,
        already_revoked: false,
    }
}

#[test]
fn with_discovery_the_endpoints_need_no_cluster_or_path() {
    let config = config(&format!(
        r#", "discovery": {{"cluster": "op"}},
            "revoke": {{{CLIENT}}}, "introspection": {{{CLIENT}}}"#
    ))
    .unwrap();
    let provider = &config.providers[0];
    assert_eq!(provider.revocation.as_ref().unwrap().endpoint, None);
    assert_eq!(provider.introspection.as_ref().unwrap().endpoint, None);

    // Not discovered yet: logout is a 503 the client may retry, introspection has no request.
    let unknown = DiscoveredEndpoints::default();
    let refused = logout_plan(&config, 0, &unknown).unwrap_err();
    assert_eq!(refused.status, 503);
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(request(&config, 0, "opaque", &unknown).is_none());

    // Discovered: both go where the document said, through its resolved cluster.
    let found = discovered();
    let (logout, revoke) = logout_plan(&config, 0, &found).unwrap();
    let (_, calls) = LogoutMachine::start(logout, revoke, subject());
    let (_, revocation) = &calls[0];
    assert_eq!(target(revocation), ("op-origin", "/token/revocation"));
    let introspection = request(&config, 0, "opaque", &found).unwrap();
    assert_eq!(
        target(&introspection),
        ("op-origin", "/token/introspection")
    );
}

#[test]
fn a_configured_endpoint_wins_over_the_discovered_one() {
    let config = config(&format!(
        r#", "discovery": {{"cluster": "op"}},
            "revoke": {{"cluster": "mine", "path": "/revoke", {CLIENT}}},
            "introspection": {{"cluster": "mine", "path": "/introspect", {CLIENT}}}"#
    ))
    .unwrap();
    let found = discovered();
    let (logout, revoke) = logout_plan(&config, 0, &found).unwrap();
    let (_, calls) = LogoutMachine::start(logout, revoke, subject());
    assert_eq!(calls[0].1.cluster, "mine");
    let introspection = request(&config, 0, "opaque", &found).unwrap();
    assert_eq!(target(&introspection), ("mine", "/introspect"));
}

#[test]
fn without_discovery_cluster_and_path_are_required_together() {
    let jwks = r#", "jwks": {"cluster": "op", "path": "/jwks"}"#;
    for (block, field, message) in [
        (
            format!(r#", "revoke": {{{CLIENT}}}"#),
            "providers[0].revoke.cluster",
            "unless the provider has discovery",
        ),
        (
            format!(r#", "introspection": {{{CLIENT}}}"#),
            "providers[0].introspection.cluster",
            "unless the provider has discovery",
        ),
        (
            format!(r#", "revoke": {{"cluster": "op", {CLIENT}}}"#),
            "providers[0].revoke.path",
            "is required with cluster",
        ),
        (
            format!(r#", "introspection": {{"path": "/i", {CLIENT}}}"#),
            "providers[0].introspection.cluster",
            "is required with path",
        ),
    ] {
        let error = config(&format!("{jwks}{block}")).unwrap_err();
        assert!(
            error.starts_with(field) && error.contains(message),
            "{block}: {error}"
        );
    }
    // With discovery, a timeout or authority without cluster and path is refused (a discovered
    // endpoint has its origin's).
    let error = config(&format!(
        r#", "discovery": {{"cluster": "op"}}, "revoke": {{"timeout_ms": 500, {CLIENT}}}"#
    ))
    .unwrap_err();
    assert!(error.starts_with("providers[0].revoke.cluster"), "{error}");
}
