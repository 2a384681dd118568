//! The revocation feed's long poll through the real filter.wasm: the poll asks the IDP to hold it
//! (`wait=S`) with a timeout above `S`; a held answer is followed by the next poll at once, and
//! an IDP that answers at once (it does not hold requests) is polled every `poll_ms`, as before.
//! Polls made before the denylist is up to date (a fresh Envoy's first) are not held (see
//! `initial_sync.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use host_test::{Envoy, HttpCall, Response};
use serde_json::json;
use std::time::Duration;
use support::{Issuer, config, envoy_with};

const FEED_PATH: &str = "/oauth2/revocations";

fn envoy(long_poll: Option<u64>) -> Envoy {
    let mut config = config();
    config["idp_client"] =
        json!({"client_id": "gateway", "client_secret": "gateway-secret-0123456789"});
    config["revocation_feed"] = json!({"cluster": "idp", "path": FEED_PATH, "poll_ms": 1000});
    if let Some(seconds) = long_poll {
        config["revocation_feed"]["long_poll_seconds"] = json!(seconds);
    }
    envoy_with(&config, 2)
}

fn feed_polls(envoy: &Envoy) -> Vec<HttpCall> {
    envoy
        .pending_http_calls()
        .into_iter()
        .filter(|c| c.path().unwrap_or("").starts_with(FEED_PATH))
        .collect()
}

/// Answers the JWKS fetch (if pending) and returns the one feed poll in flight.
fn the_poll(envoy: &mut Envoy, issuer: &Issuer) -> HttpCall {
    for call in envoy.pending_http_calls() {
        if !call.path().unwrap_or("").starts_with(FEED_PATH) {
            envoy
                .respond(call.id, Response::json(200, issuer.jwks().to_string()))
                .unwrap();
        }
    }
    let polls = feed_polls(envoy);
    assert_eq!(polls.len(), 1, "one poll per Envoy: {polls:#?}");
    polls.into_iter().next().unwrap()
}

fn empty_page(cursor: &str) -> Response {
    Response::json(200, json!({"cursor": cursor, "revoked": []}).to_string())
}

/// Answers the first poll (not held: the list is not up to date yet) with an empty page at
/// `cursor`; returns the poll that follows at once.
fn first_poll_answered(envoy: &mut Envoy, issuer: &Issuer, cursor: &str) -> HttpCall {
    envoy.advance(Duration::from_secs(1)).unwrap();
    let first = the_poll(envoy, issuer);
    assert_eq!(first.path(), Some(FEED_PATH), "the first poll is not held");
    envoy.respond(first.id, empty_page(cursor)).unwrap();
    envoy.advance(Duration::from_millis(100)).unwrap();
    the_poll(envoy, issuer)
}

#[test]
fn the_poll_asks_to_be_held_and_waits_longer_than_the_hold() {
    let issuer = Issuer::es256(1, "k1");
    let mut envoy = envoy(None);
    let poll = first_poll_answered(&mut envoy, &issuer, "3");
    assert_eq!(poll.path(), Some("/oauth2/revocations?since=3&wait=20"));
    let timeout = poll.timeout.expect("a timeout");
    assert!(
        timeout > Duration::from_secs(20),
        "the call outlives the hold: {timeout:?}"
    );
    envoy.respond(poll.id, empty_page("4")).unwrap();
    envoy.advance(Duration::from_secs(2)).unwrap();
    assert_eq!(
        the_poll(&mut envoy, &issuer).path(),
        Some("/oauth2/revocations?since=4&wait=20")
    );
}

#[test]
fn a_held_answer_is_followed_at_once_a_fast_empty_one_after_poll_ms() {
    let issuer = Issuer::es256(1, "k1");
    let mut envoy = envoy(Some(10));
    let poll = first_poll_answered(&mut envoy, &issuer, "1");
    // The IDP holds the poll for its 10 s and answers with nothing new.
    envoy.advance(Duration::from_secs(10)).unwrap();
    assert_eq!(feed_polls(&envoy).len(), 1, "still one poll, held");
    envoy.respond(poll.id, empty_page("1")).unwrap();
    envoy.advance(Duration::from_millis(100)).unwrap();
    let poll = the_poll(&mut envoy, &issuer);
    assert_eq!(poll.path(), Some("/oauth2/revocations?since=1&wait=10"));
    // Now it answers at once, with nothing: an IDP that does not hold requests. The next poll
    // waits for poll_ms (1 s), not one per tick.
    envoy.respond(poll.id, empty_page("1")).unwrap();
    envoy.advance(Duration::from_millis(500)).unwrap();
    assert!(feed_polls(&envoy).is_empty(), "no poll before poll_ms");
    envoy.advance(Duration::from_millis(600)).unwrap();
    assert_eq!(feed_polls(&envoy).len(), 1, "the next poll after poll_ms");
}

#[test]
fn a_page_with_entries_is_followed_at_once() {
    let issuer = Issuer::es256(1, "k1");
    let mut envoy = envoy(Some(10));
    envoy.advance(Duration::from_secs(1)).unwrap();
    let poll = the_poll(&mut envoy, &issuer);
    let exp = envoy.clock().unix_seconds() + 300;
    let page = json!({"cursor": "9", "revoked": [{"jti": "j-1", "exp": exp}]});
    envoy
        .respond(poll.id, Response::json(200, page.to_string()))
        .unwrap();
    envoy.advance(Duration::from_millis(100)).unwrap();
    assert_eq!(
        the_poll(&mut envoy, &issuer).path(),
        Some("/oauth2/revocations?since=9&wait=10")
    );
}

#[test]
fn zero_turns_the_long_poll_off_and_an_out_of_range_wait_is_refused() {
    let issuer = Issuer::es256(1, "k1");
    let mut envoy = envoy(Some(0));
    envoy.advance(Duration::from_secs(1)).unwrap();
    let poll = the_poll(&mut envoy, &issuer);
    assert_eq!(poll.path(), Some("/oauth2/revocations"));
    assert!(poll.timeout.unwrap() <= Duration::from_secs(10));

    let mut refused = config();
    refused["idp_client"] =
        json!({"client_id": "gateway", "client_secret": "gateway-secret-0123456789"});
    refused["revocation_feed"] =
        json!({"cluster": "idp", "path": FEED_PATH, "long_poll_seconds": 301});
    let err = filter::config::FilterConfig::from_json(refused.to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("long_poll_seconds"),
        "the reason names the field: {err}"
    );
}
