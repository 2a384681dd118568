//! A provider configured by OpenID Connect Discovery only (issuer + cluster), driven through the
//! harness: the document fetched once for the whole Envoy, then the keys from the resolved
//! `jwks_uri`; another issuer or a `jwks_uri` on a foreign origin leaves the provider without
//! keys (tokens refused) and says why in the log.

#![allow(clippy::unwrap_used, clippy::panic)] // test code

mod support;

use host_test::{Envoy, EnvoyOptions, LogLevel, Request, Response};
use serde_json::{Value, json};
use std::time::Duration;
use support::{AUDIENCE, Issuer, host};

const OP: &str = "https://op.example.com/realms/demo";
const DOCUMENT_PATH: &str = "/realms/demo/.well-known/openid-configuration";

fn discovery_config() -> Value {
    json!({"providers": [{
        "name": "op", "issuer": OP, "audiences": [AUDIENCE], "algorithms": ["ES256"],
        "discovery": {"cluster": "op", "refresh_seconds": 60,
                      "origins": {"https://keys.example.com": "keys"}}
    }]})
}

fn envoy(workers: usize) -> Envoy {
    host()
        .envoy(
            EnvoyOptions::new()
                .workers(workers)
                .plugin_name("oauth2-gateway")
                .clusters(["op", "keys"])
                .plugin_config(discovery_config().to_string()),
        )
        .unwrap()
}

fn document(members: Value) -> String {
    let mut doc = json!({"issuer": OP, "jwks_uri": format!("{OP}/protocol/openid-connect/certs?v=1"),
        "revocation_endpoint": format!("{OP}/revoke"), "token_endpoint": format!("{OP}/token")});
    if let (Some(d), Some(m)) = (doc.as_object_mut(), members.as_object()) {
        d.extend(m.clone());
    }
    doc.to_string()
}

fn token(issuer: &Issuer, envoy: &Envoy) -> String {
    let mut claims = support::claims(envoy.clock().unix_seconds());
    claims["iss"] = json!(OP);
    issuer.token(&claims)
}

/// Answers the one pending discovery fetch with `doc`.
fn answer_document(envoy: &mut Envoy, doc: String) {
    let calls = envoy.pending_http_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(
        (calls[0].cluster.as_str(), calls[0].path()),
        ("op", Some(DOCUMENT_PATH))
    );
    envoy
        .respond(calls[0].id, Response::json(200, doc))
        .unwrap();
}

#[test]
fn the_document_is_fetched_once_then_the_keys_from_its_jwks_uri() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = envoy(3);
    assert!(envoy.configured(), "{:?}", envoy.start_reports());
    let early = token(&issuer, &envoy);
    assert_eq!(
        envoy
            .request(Request::get("/api").bearer(&early))
            .unwrap()
            .status(),
        Some(503),
        "no keys yet"
    );

    envoy.advance(Duration::from_secs(1)).unwrap();
    answer_document(&mut envoy, document(json!({})));
    // Four VMs ticked; one document fetch, then one JWKS fetch through the same cluster.
    envoy.advance(Duration::from_millis(300)).unwrap();
    let calls = envoy.pending_http_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let jwks = &calls[0];
    assert_eq!(jwks.cluster, "op");
    assert_eq!(
        jwks.path(),
        Some("/realms/demo/protocol/openid-connect/certs?v=1")
    );
    assert_eq!(jwks.authority(), Some("op.example.com"));
    envoy
        .respond(jwks.id, Response::json(200, issuer.jwks().to_string()))
        .unwrap();
    envoy.advance(Duration::from_millis(300)).unwrap();
    assert_eq!(envoy.dispatched_http_calls().len(), 2);
    assert_eq!(envoy.metric("oauth2gw.discovery_ok"), Some(1));
    assert_eq!(envoy.metric("oauth2gw.jwks_fetch_ok"), Some(1));

    let fresh = token(&issuer, &envoy);
    for _ in 0..3 {
        let outcome = envoy.request(Request::get("/api").bearer(&fresh)).unwrap();
        assert_eq!(outcome.status(), Some(200), "{outcome:#?}");
    }

    // The refresh fetches the document again; a failed one keeps the last good document, whose
    // jwks_uri is used for the keys.
    envoy.advance(Duration::from_secs(61)).unwrap();
    let calls = envoy.pending_http_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].path(), Some(DOCUMENT_PATH));
    envoy
        .respond(calls[0].id, Response::json(500, "{}"))
        .unwrap();
    envoy.advance(Duration::from_millis(300)).unwrap();
    let calls = envoy.pending_http_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(
        calls[0].path(),
        Some("/realms/demo/protocol/openid-connect/certs?v=1")
    );
    assert!(
        !envoy
            .logs_containing(LogLevel::Warn, "keeping the last good document")
            .is_empty(),
        "{:#?}",
        envoy.logs()
    );
}

#[test]
fn a_document_for_another_issuer_leaves_the_provider_without_keys() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = envoy(2);
    envoy.advance(Duration::from_secs(1)).unwrap();
    answer_document(
        &mut envoy,
        document(json!({"issuer": "https://op.example.com/realms/other"})),
    );
    envoy.advance(Duration::from_millis(300)).unwrap();
    assert!(envoy.pending_http_calls().is_empty(), "no JWKS fetch");
    let logged = envoy.logs_containing(LogLevel::Error, "realms/other");
    assert_eq!(logged.len(), 1, "once per fetch: {:#?}", envoy.logs());
    assert!(logged[0].message.contains("not the configured issuer"));
    let fresh = token(&issuer, &envoy);
    let outcome = envoy.request(Request::get("/api").bearer(&fresh)).unwrap();
    assert_eq!(outcome.status(), Some(503), "{outcome:#?}");
    assert_eq!(envoy.metric("oauth2gw.discovery_failed"), Some(1));
}

#[test]
fn a_jwks_uri_on_a_foreign_origin_is_refused_and_a_listed_one_is_used() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = envoy(1);
    envoy.advance(Duration::from_secs(1)).unwrap();
    let foreign = "https://attacker.example/certs";
    answer_document(&mut envoy, document(json!({"jwks_uri": foreign})));
    envoy.advance(Duration::from_millis(300)).unwrap();
    assert!(envoy.pending_http_calls().is_empty(), "never fetched");
    assert!(
        !envoy.logs_containing(LogLevel::Error, foreign).is_empty(),
        "{:#?}",
        envoy.logs()
    );
    let fresh = token(&issuer, &envoy);
    let outcome = envoy.request(Request::get("/api").bearer(&fresh)).unwrap();
    assert_eq!(outcome.status(), Some(503), "{outcome:#?}");

    // After the backoff, a document naming an origin listed in `origins`: its cluster.
    envoy.advance(Duration::from_secs(2)).unwrap();
    answer_document(
        &mut envoy,
        document(json!({"jwks_uri": "https://keys.example.com:443/jwks"})),
    );
    envoy.advance(Duration::from_millis(300)).unwrap();
    let calls = envoy.pending_http_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(
        (
            calls[0].cluster.as_str(),
            calls[0].path(),
            calls[0].authority()
        ),
        ("keys", Some("/jwks"), Some("keys.example.com"))
    );
    envoy
        .respond(calls[0].id, Response::json(200, issuer.jwks().to_string()))
        .unwrap();
    envoy.advance(Duration::from_millis(300)).unwrap();
    let outcome = envoy.request(Request::get("/api").bearer(&fresh)).unwrap();
    assert_eq!(outcome.status(), Some(200), "{outcome:#?}");
}

#[test]
fn an_unknown_kid_refetches_the_document_then_the_keys() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = envoy(2);
    envoy.advance(Duration::from_secs(1)).unwrap();
    answer_document(&mut envoy, document(json!({})));
    envoy.advance(Duration::from_millis(300)).unwrap();
    let jwks = envoy.pending_http_calls()[0].id;
    envoy
        .respond(jwks, Response::json(200, issuer.jwks().to_string()))
        .unwrap();
    // A token signed by a key the gateway does not know, after min_early_refresh_seconds (10).
    envoy.advance(Duration::from_secs(11)).unwrap();
    let rotated = Issuer::es256(8, "k2");
    let outcome = envoy
        .request(Request::get("/api").bearer(&token(&rotated, &envoy)))
        .unwrap();
    assert_eq!(outcome.status(), Some(401), "{outcome:#?}");
    envoy.advance(Duration::from_millis(300)).unwrap();
    answer_document(&mut envoy, document(json!({})));
    envoy.advance(Duration::from_millis(300)).unwrap();
    let calls = envoy.pending_http_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(
        calls[0].path(),
        Some("/realms/demo/protocol/openid-connect/certs?v=1")
    );
}
