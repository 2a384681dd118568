//! A fresh Envoy (or a new VM) refuses tokens with 503 until its revocation feed was read up to
//! date, so a token revoked before it started is never accepted in the gap between its first
//! JWKS answer and its first feed answer. Through the real filter.wasm, on two workers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use host_test::{Envoy, HttpCall, LogLevel, Request, Response};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Issuer, claims, config, envoy_with};

const FEED_PATH: &str = "/oauth2/revocations";
const SYNCED_KEY: &str = "oauth2gw/denylist2/synced";

fn feed_config() -> Value {
    let mut config = config();
    config["idp_client"] =
        json!({"client_id": "gateway", "client_secret": "gateway-secret-0123456789"});
    config["revocation_feed"] = json!({"cluster": "idp", "path": FEED_PATH, "poll_ms": 500});
    config
}

/// An Envoy (2 workers) whose first JWKS fetch was answered; the first feed poll is in flight.
fn keyed_envoy(issuer: &Issuer, config: &Value) -> Envoy {
    let mut envoy = envoy_with(config, 2);
    envoy.advance(Duration::from_secs(1)).unwrap();
    for call in envoy.pending_http_calls() {
        if !call.path().unwrap_or("").starts_with(FEED_PATH) {
            envoy
                .respond(call.id, Response::json(200, issuer.jwks().to_string()))
                .unwrap();
        }
    }
    envoy
}

fn the_poll(envoy: &Envoy) -> HttpCall {
    let polls: Vec<HttpCall> = envoy
        .pending_http_calls()
        .into_iter()
        .filter(|c| c.path().unwrap_or("").starts_with(FEED_PATH))
        .collect();
    assert_eq!(polls.len(), 1, "one poll per Envoy: {polls:#?}");
    polls.into_iter().next().unwrap()
}

fn token(issuer: &Issuer, envoy: &Envoy, jti: &str) -> String {
    let mut c = claims(envoy.clock().unix_seconds());
    c["jti"] = json!(jti);
    issuer.token(&c)
}

/// The status of `token` on each worker (requests go round robin).
fn statuses(envoy: &mut Envoy, token: &str) -> Vec<Option<u16>> {
    (0..envoy.workers())
        .map(|_| {
            envoy
                .request(Request::get("/api/hello").bearer(token))
                .unwrap()
                .status()
        })
        .collect()
}

fn page(envoy: &Envoy, cursor: &str, revoked: &[&str], more: Option<bool>) -> Response {
    let exp = envoy.clock().unix_seconds() + 300;
    let revoked: Vec<Value> = revoked
        .iter()
        .map(|j| json!({"jti": j, "exp": exp}))
        .collect();
    let mut page = json!({"cursor": cursor, "revoked": revoked});
    if let Some(more) = more {
        page["more"] = json!(more);
    }
    Response::json(200, page.to_string())
}

#[test]
fn tokens_are_refused_with_503_until_the_feed_is_read_up_to_date() {
    let issuer = Issuer::es256(3, "k1");
    let mut envoy = keyed_envoy(&issuer, &feed_config());
    let (valid, gone) = (token(&issuer, &envoy, "ok"), token(&issuer, &envoy, "gone"));

    // Keys, no feed answer yet: 503 on every worker, its own counter, no challenge.
    let outcome = envoy
        .request(Request::get("/api/hello").bearer(&valid))
        .unwrap();
    let reply = outcome.local_reply().expect("a local reply");
    assert_eq!(reply.reply.status, 503);
    assert_eq!(
        reply.reply.body_text(),
        "revoked tokens are not loaded yet; try again shortly\n"
    );
    assert_eq!(reply.reply.header("www-authenticate"), None);
    assert_eq!(statuses(&mut envoy, &gone), [Some(503), Some(503)]);
    assert_eq!(
        envoy.metric("oauth2gw.denied.revocations_not_loaded"),
        Some(3)
    );
    assert_eq!(envoy.metric("oauth2gw.allowed"), Some(0));
    // Said once per worker, not per request.
    let warnings = envoy.logs_containing(LogLevel::Warn, "not been read up to date");
    assert!((1..=2).contains(&warnings.len()), "{warnings:#?}");
    // What needs no token is not held up: a missing token is still 401.
    let missing = envoy.request(Request::get("/api/hello")).unwrap();
    assert_eq!(missing.status(), Some(401));

    // The first poll was not held (a fresh Envoy must not wait out an empty long poll); it
    // answers a full page: its revocation applies, but more follow.
    let first = the_poll(&envoy);
    assert_eq!(first.path(), Some(FEED_PATH));
    assert!(first.timeout.unwrap() < Duration::from_secs(20));
    let full = page(&envoy, "1000", &["gone"], Some(true));
    envoy.respond(first.id, full).unwrap();
    assert_eq!(statuses(&mut envoy, &valid), [Some(503), Some(503)]);
    assert_eq!(statuses(&mut envoy, &gone), [Some(401), Some(401)]);
    assert_eq!(envoy.shared_data(SYNCED_KEY), None);

    // The rest is asked for at the next tick, from the cursor, not held either.
    envoy.advance(Duration::from_millis(100)).unwrap();
    let rest = the_poll(&envoy);
    assert_eq!(rest.path(), Some("/oauth2/revocations?since=1000"));
    let last = page(&envoy, "1001", &[], Some(false));
    envoy.respond(rest.id, last).unwrap();
    assert_eq!(statuses(&mut envoy, &valid), [Some(200), Some(200)]);
    assert_eq!(statuses(&mut envoy, &gone), [Some(401), Some(401)]);
    assert_eq!(envoy.metric("oauth2gw.revocation_feed_synced"), Some(1));
    assert_eq!(
        envoy
            .logs_containing(LogLevel::Info, "revocation feed read up to date")
            .len(),
        1
    );

    // Up to date: the next poll is a long one.
    envoy.advance(Duration::from_millis(100)).unwrap();
    let long = the_poll(&envoy);
    assert_eq!(long.path(), Some("/oauth2/revocations?since=1001&wait=20"));

    // Workers remember it: it stays for the configuration's lifetime, also through an outage
    // (the long poll fails) — and even were the shared mark gone, a worker that saw it does not
    // read it again.
    envoy.set_shared_data(SYNCED_KEY, b"").unwrap();
    envoy
        .respond(long.id, Response::json(500, "{}".to_owned()))
        .unwrap();
    envoy.advance(Duration::from_secs(2)).unwrap();
    assert_eq!(statuses(&mut envoy, &valid), [Some(200), Some(200)]);
}

#[test]
fn a_failed_first_poll_keeps_tokens_refused_and_a_page_without_more_is_up_to_date() {
    let issuer = Issuer::es256(3, "k1");
    let mut envoy = keyed_envoy(&issuer, &feed_config());
    let valid = token(&issuer, &envoy, "ok");
    let first = the_poll(&envoy);
    envoy
        .respond(first.id, Response::json(503, "{}".to_owned()))
        .unwrap();
    assert_eq!(statuses(&mut envoy, &valid), [Some(503), Some(503)]);
    // After the backoff, an IDP that does not send `more` at all: one page is everything.
    envoy.advance(Duration::from_millis(1_100)).unwrap();
    let again = the_poll(&envoy);
    envoy
        .respond(again.id, page(&envoy, "4", &[], None))
        .unwrap();
    assert_eq!(statuses(&mut envoy, &valid), [Some(200), Some(200)]);
}

#[test]
fn with_the_opt_out_tokens_are_judged_as_soon_as_there_are_keys() {
    let issuer = Issuer::es256(3, "k1");
    let mut config = feed_config();
    config["revocation_feed"]["require_initial_sync"] = json!(false);
    let mut envoy = keyed_envoy(&issuer, &config);
    let valid = token(&issuer, &envoy, "ok");
    assert_eq!(statuses(&mut envoy, &valid), [Some(200), Some(200)]);
    assert_eq!(
        envoy.metric("oauth2gw.denied.revocations_not_loaded"),
        Some(0)
    );
    // The feed is still read and enforced.
    let first = the_poll(&envoy);
    envoy
        .respond(first.id, page(&envoy, "1", &["ok"], None))
        .unwrap();
    assert_eq!(statuses(&mut envoy, &valid), [Some(401), Some(401)]);
    assert_eq!(envoy.metric("oauth2gw.revocation_feed_synced"), Some(1));
}
