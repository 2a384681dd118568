//! A provider configured by discovery only, on the main thread with a fake host: the document,
//! then the keys from its `jwks_uri` through the configured cluster, the endpoints published to
//! every worker; another issuer or a foreign `jwks_uri` leaves the provider without keys and is
//! logged at error level; a failed refresh keeps the last good document.

use super::{Setup, T0, setup_with};
use crate::log::take_test_lines;
use filter::config::services::Callout;
use serde_json::{Value, json};

const DOCUMENT: &str = "op /.well-known/openid-configuration";

fn discovery_setup() -> Setup {
    setup_with(json!({"providers": [{
        "name": "op", "issuer": "https://idp.test", "audiences": ["api"], "algorithms": ["ES256"],
        "discovery": {"cluster": "op", "refresh_seconds": 60, "timeout_ms": 2000,
                      "origins": {"https://keys.test": "keys"}}
    }]}))
}

fn document(members: Value) -> String {
    let mut doc = json!({"issuer": "https://idp.test", "jwks_uri": "https://idp.test/certs?v=1",
        "revocation_endpoint": "https://idp.test/revoke",
        "end_session_endpoint": "https://keys.test/logout"});
    if let (Some(d), Some(m)) = (doc.as_object_mut(), members.as_object()) {
        d.extend(m.clone());
    }
    doc.to_string()
}

impl Setup {
    /// Ticks at `now`, expects the document's fetch and answers it; returns the calls it led to.
    fn answer_document(&mut self, now: u64, status: u32, body: &str) -> Vec<String> {
        let before = self.main.calls.len();
        self.bg.tick(&self.gw, &mut self.main, now);
        assert_eq!(self.main.paths()[before..], [DOCUMENT.to_owned()]);
        let after = self.main.calls.len();
        self.bg.answer(
            &self.gw,
            &mut self.main,
            after as u64,
            Some(status),
            body.as_bytes(),
            now,
        );
        self.main.paths()[after..].to_vec()
    }

    fn answer_last(&mut self, now: u64, status: u32, body: &str) {
        let id = self.main.calls.len() as u64;
        self.bg.answer(
            &self.gw,
            &mut self.main,
            id,
            Some(status),
            body.as_bytes(),
            now,
        );
    }

    fn authority_of_last(&self) -> String {
        let (_, headers) = self.main.calls.last().unwrap();
        let found = headers.iter().find(|(k, _)| k == ":authority");
        found.map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

#[test]
fn the_document_then_the_keys_make_tokens_valid_and_endpoints_published() {
    let mut s = discovery_setup();
    let token = s.token("k1", "j-1");
    assert_eq!(s.request("GET", "/api", &token, T0).reply.unwrap().0, 503);
    let next = s.answer_document(T0, 200, &document(json!({})));
    assert_eq!(next, ["op /certs?v=1"]);
    assert_eq!(s.authority_of_last(), "idp.test");
    let jwks = s.jwks.clone();
    s.answer_last(T0 + 10, 200, &jwks);
    assert_eq!(s.main.counts.get("discovery_ok"), Some(&1));
    assert_eq!(s.main.counts.get("jwks_fetch_ok"), Some(&1));
    assert_eq!(s.request("GET", "/api", &token, T0 + 20).reply, None);

    let endpoints = s.gw.discovered(0);
    let callout = |cluster: &str, authority: &str, path: &str| Callout {
        cluster: cluster.into(),
        authority: authority.into(),
        path: path.into(),
        timeout_ms: 2_000,
    };
    assert_eq!(
        endpoints.revocation,
        Some(callout("op", "idp.test", "/revoke"))
    );
    assert_eq!(
        endpoints.end_session,
        Some(callout("keys", "keys.test", "/logout"))
    );
    assert_eq!(endpoints.introspection, None);
    assert_eq!(*s.gw.discovered(7), Default::default(), "no such provider");

    // Nothing before the refresh period; then the document again. A failed one keeps the last
    // good document: the keys are fetched from its jwks_uri and the endpoints stay.
    let calls = s.main.calls.len();
    s.bg.tick(&s.gw, &mut s.main, T0 + 30_000);
    assert_eq!(s.main.calls.len(), calls);
    take_test_lines();
    let next = s.answer_document(T0 + 60_010, 503, "down");
    assert_eq!(next, ["op /certs?v=1"]);
    let lines = take_test_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Warn:") && l.contains("keeping the last good document")),
        "{lines:#?}"
    );
    assert_eq!(s.gw.discovered(0).revocation, endpoints.revocation);
}

#[test]
fn a_document_for_another_issuer_is_refused_and_logged_once() {
    let mut s = discovery_setup();
    take_test_lines();
    let next = s.answer_document(T0, 200, &document(json!({"issuer": "https://idp.test/"})));
    assert!(next.is_empty(), "no JWKS fetch: {next:?}");
    let lines = take_test_lines();
    let errors: Vec<_> = lines.iter().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "{lines:#?}");
    assert!(
        errors[0].contains("not the configured issuer"),
        "{errors:?}"
    );
    assert_eq!(s.main.counts.get("discovery_failed"), Some(&1));
    let token = s.token("k1", "j-1");
    assert_eq!(
        s.request("GET", "/api", &token, T0 + 10).reply.unwrap().0,
        503
    );
    assert_eq!(*s.gw.discovered(0), Default::default());
    // Backed off, then asked again.
    let calls = s.main.calls.len();
    s.bg.tick(&s.gw, &mut s.main, T0 + 500);
    assert_eq!(s.main.calls.len(), calls);
    s.answer_document(T0 + 1_000, 200, &document(json!({})));
}

#[test]
fn a_jwks_uri_on_a_foreign_origin_is_never_called() {
    let mut s = discovery_setup();
    take_test_lines();
    let foreign = "https://attacker.test/certs";
    let next = s.answer_document(T0, 200, &document(json!({"jwks_uri": foreign})));
    assert!(next.is_empty(), "{next:?}");
    let lines = take_test_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Error:") && l.contains(foreign)),
        "{lines:#?}"
    );
    let token = s.token("k1", "j-1");
    assert_eq!(
        s.request("GET", "/api", &token, T0 + 10).reply.unwrap().0,
        503
    );
    // A listed origin goes to its cluster.
    let next = s.answer_document(
        T0 + 1_000,
        200,
        &document(json!({"jwks_uri": "https://keys.test:443/jwks"})),
    );
    assert_eq!(next, ["keys /jwks"]);
    assert_eq!(s.authority_of_last(), "keys.test");
}

#[test]
fn an_unknown_kid_refetches_the_document_then_the_keys_throttled() {
    let mut s = discovery_setup(); // min_early_refresh_seconds: 10 (the default)
    s.answer_document(T0, 200, &document(json!({})));
    let jwks = s.jwks.clone();
    s.answer_last(T0 + 10, 200, &jwks);
    let unknown = s.token("k2", "j-2");
    assert_eq!(
        s.request("GET", "/api", &unknown, T0 + 1_000)
            .reply
            .unwrap()
            .0,
        401
    );
    // Within min_early_refresh_seconds of the fetch: nothing.
    let calls = s.main.calls.len();
    s.bg.tick(&s.gw, &mut s.main, T0 + 1_100);
    assert_eq!(s.main.calls.len(), calls);
    // After it, the next unknown kid asks for the document (and then the keys) at once.
    s.request("GET", "/api", &unknown, T0 + 11_000);
    let next = s.answer_document(T0 + 11_100, 200, &document(json!({})));
    assert_eq!(next, ["op /certs?v=1"]);
}
