//! The filter's shared state (denylist, JWKS) across workers, driven through the harness: the
//! regression tests of issue 20's defects 1–3.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use host_test::{Envoy, Outcome, Request, Response};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Issuer, claims, config, envoy_with, ready_envoy};

const FEED_PATH: &str = "/oauth2/revocations";

/// A configuration with logout (so logouts revoke) and the revocation feed polled every second.
fn revoking_config() -> Value {
    let mut config = config();
    config["idp_client"] =
        json!({"client_id": "gateway", "client_secret": "gateway-secret-0123456789"});
    config["logout"] = json!({
        "revoke": {"cluster": "idp", "path": "/oauth2/revoke"},
        "resource_server": {"cluster": "resource-server", "path": "/internal/sessions/revoke",
                            "secret_header": "x-gateway-secret", "secret": "s3cret-s3cret-s3cret"}
    });
    // Plain polling every second (no long poll: these tests time the polls themselves).
    config["revocation_feed"] =
        json!({"cluster": "idp", "path": FEED_PATH, "poll_ms": 1000, "long_poll_seconds": 0});
    config
}

fn token_with(issuer: &Issuer, envoy: &Envoy, jti: &str, sid: &str) -> String {
    let mut c = claims(envoy.clock().unix_seconds());
    c["jti"] = json!(jti);
    c["sid"] = json!(sid);
    issuer.token(&c)
}

/// An Envoy with the JWKS fetched and the first feed poll answered with `first_page`.
fn revoking_envoy(issuer: &Issuer, workers: usize, first_page: &Value) -> Envoy {
    let mut envoy = envoy_with(&revoking_config(), workers);
    envoy.advance(Duration::from_secs(1)).unwrap();
    for call in envoy.pending_http_calls() {
        let body = if call.path().unwrap_or("").starts_with(FEED_PATH) {
            first_page.to_string()
        } else {
            issuer.jwks().to_string()
        };
        envoy.respond(call.id, Response::json(200, body)).unwrap();
    }
    assert!(envoy.pending_http_calls().is_empty());
    envoy
}

/// Logs `token` out on `worker`, both calls answered with success, all at the current instant.
fn logout_on(envoy: &mut Envoy, worker: usize, token: &str) {
    let outcome = envoy
        .worker(worker)
        .request(Request::post("/oauth2/logout").bearer(token))
        .unwrap();
    let Outcome::Paused(stream) = outcome else {
        panic!("logout waits for its calls: {outcome:#?}");
    };
    for call in envoy.pending_http_calls() {
        let status = if call.cluster == "idp" { 200 } else { 204 };
        envoy.respond(call.id, Response::new(status)).unwrap();
    }
    let done = envoy.worker(worker).outcome(stream);
    assert_eq!(done.status(), Some(200), "{done:#?}");
}

/// Defect 1: the denylist's version was a millisecond clock, so a second revocation in the same
/// millisecond did not move it and a worker that synced in between kept accepting the token.
#[test]
fn a_second_revocation_in_the_same_millisecond_reaches_every_worker() {
    let issuer = Issuer::es256(7, "k1");
    let empty = json!({"cursor": 1, "revoked": []});
    let mut envoy = revoking_envoy(&issuer, 2, &empty);
    let first = token_with(&issuer, &envoy, "jti-a", "sid-a");
    let second = token_with(&issuer, &envoy, "jti-b", "sid-b");
    // No time passes from here on (the harness clock only moves when told to).
    logout_on(&mut envoy, 0, &first);
    let seen = envoy
        .worker(1)
        .request(Request::get("/api").bearer(&first))
        .unwrap();
    assert_eq!(seen.status(), Some(401), "{seen:#?}");
    logout_on(&mut envoy, 0, &second);
    let outcome = envoy
        .worker(1)
        .request(Request::get("/api").bearer(&second))
        .unwrap();
    assert_eq!(outcome.status(), Some(401), "{outcome:#?}");
}

/// Defect 1: every poll bumped the version even when it changed nothing, so every VM re-decoded
/// the whole list after every poll (and every tick read the list's whole entry to find the
/// schedule). A VM that does not poll must spend next to nothing on a list that did not change:
/// an 8-byte read per tick, whether or not a poll that brought nothing happened meanwhile.
#[test]
fn a_poll_that_changes_nothing_makes_no_vm_reread_the_list() {
    let issuer = Issuer::es256(7, "k1");
    let exp = 4_000_000_000u64;
    let revoked: Vec<Value> = (0..3_000)
        .map(|i| json!({"jti": format!("revoked-{i}"), "exp": exp}))
        .collect();
    let page = json!({"cursor": 1, "revoked": revoked});
    let mut envoy = revoking_envoy(&issuer, 2, &page);
    // Let every VM pick the list up.
    envoy.advance(Duration::from_millis(500)).unwrap();
    let fuel =
        |envoy: &Envoy| -> Vec<u64> { envoy.vms().iter().map(|vm| vm.fuel().total).collect() };

    // 0.4 s (four ticks) without a poll (the next is due 1 s after the first).
    let before = fuel(&envoy);
    envoy.advance(Duration::from_millis(400)).unwrap();
    let quiet = fuel(&envoy);
    assert!(envoy.pending_http_calls().is_empty());
    // The next 0.4 s include the poll, answered "nothing new".
    let mut poller = None;
    envoy
        .advance_with(Duration::from_millis(400), |envoy| {
            for call in envoy.pending_http_calls() {
                poller = Some(call.id.vm);
                let nothing = json!({"cursor": 1, "revoked": []}).to_string();
                envoy.respond(call.id, Response::json(200, nothing))?;
            }
            Ok(())
        })
        .unwrap();
    let poller = poller.expect("the feed was polled");
    let after = fuel(&envoy);
    for vm in 0..after.len() {
        if vm == poller {
            continue;
        }
        let (quiet_cost, poll_cost) = (quiet[vm] - before[vm], after[vm] - quiet[vm]);
        // Four ticks each; decoding the 3 000-entry list once costs tens of millions.
        for (window, cost) in [("quiet", quiet_cost), ("empty poll", poll_cost)] {
            assert!(
                cost < 2_000_000,
                "VM {vm}: {cost} fuel in the {window} window (poller: VM {poller})"
            );
        }
    }
    // The list is still enforced.
    let token = token_with(&issuer, &envoy, "revoked-2999", "s");
    let outcome = envoy.request(Request::get("/api").bearer(&token)).unwrap();
    assert_eq!(outcome.status(), Some(401), "{outcome:#?}");
}

/// Defect 2: the keys' version was the compare-and-set token of an entry that also held the
/// schedule, so backoff writes during an IDP outage, early refreshes and refetches of the same
/// keys emptied every worker's token cache.
#[test]
fn schedule_writes_and_unchanged_keys_keep_the_token_cache() {
    let issuer = Issuer::es256(7, "k1");
    let stranger = Issuer::es256(8, "k2");
    let mut envoy = ready_envoy(&issuer, 1);
    let token = issuer.token(&claims(envoy.clock().unix_seconds()));
    // Whether a request with `token` was answered from the verified-token cache.
    let cached = |envoy: &mut Envoy| -> bool {
        let hits = envoy.metric("oauth2gw.cache_hit").unwrap_or(0);
        let outcome = envoy.request(Request::get("/").bearer(&token)).unwrap();
        assert!(outcome.is_continued(), "{outcome:#?}");
        envoy.metric("oauth2gw.cache_hit").unwrap_or(0) == hits + 1
    };
    assert!(!cached(&mut envoy));
    assert!(cached(&mut envoy));

    // The IDP is down at the next refresh: two backoff writes.
    envoy.advance(Duration::from_secs(60)).unwrap();
    for round in 0..2 {
        let calls = envoy.pending_http_calls();
        assert_eq!(calls.len(), 1, "{calls:#?}");
        envoy
            .respond(calls[0].id, Response::new(503).body("down"))
            .unwrap();
        if round == 0 {
            // The first backoff is 1 s.
            envoy.advance(Duration::from_millis(1_100)).unwrap();
        }
    }
    assert!(cached(&mut envoy), "backoff writes flushed the cache");
    // An unknown kid asks for an early refresh, which brings the same keys.
    let unknown = stranger.token(&claims(envoy.clock().unix_seconds()));
    let outcome = envoy.request(Request::get("/").bearer(&unknown)).unwrap();
    assert_eq!(outcome.status(), Some(401));
    envoy.advance(Duration::from_millis(200)).unwrap();
    let answered = envoy
        .respond_all("idp", &Response::json(200, issuer.jwks().to_string()))
        .unwrap();
    assert_eq!(answered, 1);
    envoy.advance(Duration::from_millis(200)).unwrap();
    assert!(
        cached(&mut envoy),
        "an early refresh bringing the same keys flushed the cache"
    );

    // New keys do flush it.
    let both = json!({"keys": [issuer.jwk(), stranger.jwk()]}).to_string();
    envoy.advance(Duration::from_secs(61)).unwrap();
    let answered = envoy
        .respond_all("idp", &Response::json(200, both))
        .unwrap();
    assert_eq!(answered, 1);
    envoy.advance(Duration::from_millis(200)).unwrap();
    assert!(!cached(&mut envoy), "new keys flush the cache");
}

/// Defect 3: past 200 000 entries the list dropped the soonest-expiring revocations, so their
/// still-valid tokens worked again.
#[test]
fn revocations_are_kept_past_the_old_cap() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = envoy_with(&revoking_config(), 1);
    let now = envoy.clock().unix_seconds();
    let mut body = String::from(r#"{"cursor": 2, "revoked": ["#);
    for i in 0..200_001u64 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(r#"{{"jti":"j{i}","exp":{}}}"#, now + 3_600 + i));
    }
    body.push_str("]}");
    envoy.advance(Duration::from_secs(1)).unwrap();
    for call in envoy.pending_http_calls() {
        let body = if call.path().unwrap_or("").starts_with(FEED_PATH) {
            body.clone()
        } else {
            issuer.jwks().to_string()
        };
        envoy.respond(call.id, Response::json(200, body)).unwrap();
    }
    envoy.advance(Duration::from_millis(200)).unwrap();
    for jti in ["j0", "j1", "j200000"] {
        let token = token_with(&issuer, &envoy, jti, "sid-x");
        let outcome = envoy.request(Request::get("/api").bearer(&token)).unwrap();
        assert_eq!(outcome.status(), Some(401), "{jti}: {outcome:#?}");
    }
    let fine = token_with(&issuer, &envoy, "not-revoked", "sid-y");
    let outcome = envoy.request(Request::get("/api").bearer(&fine)).unwrap();
    assert!(outcome.is_continued(), "{outcome:#?}");
}
