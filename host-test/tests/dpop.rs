//! DPoP (RFC 9449) through the real filter.wasm: proofs checked per request on top of the
//! verified-token cache, the replay cache shared by worker VMs through proxy-wasm shared data, and
//! the proof's signature checked by Envoy's `verify_signature` foreign function (or in Wasm
//! without it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use host_test::{Envoy, Outcome, Request, Response};
use serde_json::{Value, json};
use std::time::Duration;
use support::{AUDIENCE, ISSUER, Issuer, JWKS_PATH, claims, host};
use test_support::proof_claims;

const ORIGIN: &str = "http://gateway.test";

fn dpop_config(mode: &str) -> Value {
    json!({
        "providers": [{
            "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"cluster": "idp", "path": JWKS_PATH, "refresh_seconds": 60},
            "dpop": mode
        }]
    })
}

fn ready(options: host_test::EnvoyOptions, idp: &Issuer) -> Envoy {
    let mut envoy = host().envoy(options).unwrap();
    envoy.advance(Duration::from_secs(1)).unwrap();
    envoy
        .respond_all("idp", &Response::json(200, idp.jwks().to_string()))
        .unwrap();
    envoy
}

fn options(workers: usize) -> host_test::EnvoyOptions {
    host_test::EnvoyOptions::new()
        .workers(workers)
        .plugin_name("oauth2-gateway")
        .clusters(["idp", "resource-server"])
        .plugin_config(dpop_config("allowed").to_string())
}

/// A token bound to `client`, and a request with `proof`.
fn bound_token(idp: &Issuer, client: &Issuer, now: u64) -> String {
    let mut c = claims(now);
    c["cnf"] = json!({"jkt": client.thumbprint()});
    idp.token(&c)
}

fn request(token: &str, proof: &str) -> Request {
    Request::get("/api/hello")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
}

fn now_of(envoy: &Envoy) -> u64 {
    envoy.clock().unix_seconds()
}

#[test]
fn a_proof_is_accepted_once_across_worker_vms() {
    let (idp, client) = (Issuer::es256(7, "k1"), Issuer::es256(21, "client"));
    let mut envoy = ready(options(2), &idp);
    let now = now_of(&envoy);
    let token = bound_token(&idp, &client, now);
    let proof = client.proof(&proof_claims(
        "GET",
        &format!("{ORIGIN}/api/hello"),
        now,
        "once",
        &token,
    ));

    let first = envoy.worker(0).send(request(&token, &proof)).unwrap();
    assert!(
        envoy.worker(0).outcome(first).is_continued(),
        "{:#?}",
        envoy.worker(0).outcome(first)
    );
    // The same proof on the other worker VM: refused through the shared replay cache.
    let again = envoy.worker(1).send(request(&token, &proof)).unwrap();
    let outcome: Outcome = envoy.worker(1).outcome(again);
    assert_eq!(outcome.status(), Some(401), "{outcome:#?}");
    let challenge = outcome
        .reply()
        .unwrap()
        .headers
        .get("www-authenticate")
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    assert_eq!(envoy.metric("oauth2gw.denied.dpop_replayed"), Some(1));
    // Every signature went to Envoy's verify_signature: token and proof on worker 0, and on
    // worker 1 (its own token cache was empty) the token and the proof, whose jti then was known.
    assert_eq!(envoy.metric("oauth2gw.verify_native"), Some(4));
    // A fresh proof with the same token on worker 0: the token from the cache, the proof checked.
    let fresh = client.proof(&proof_claims(
        "GET",
        &format!("{ORIGIN}/api/hello"),
        now,
        "twice",
        &token,
    ));
    let third = envoy.worker(0).send(request(&token, &fresh)).unwrap();
    assert!(envoy.worker(0).outcome(third).is_continued());
    assert_eq!(envoy.metric("oauth2gw.cache_hit"), Some(1));
    assert_eq!(envoy.metric("oauth2gw.verify_native"), Some(5));
}

#[test]
fn without_verify_signature_the_proof_is_checked_in_wasm() {
    let (idp, client) = (Issuer::es256(7, "k1"), Issuer::eddsa(22, "client"));
    let mut envoy = ready(
        options(1).without_foreign_function("verify_signature"),
        &idp,
    );
    let now = now_of(&envoy);
    let token = bound_token(&idp, &client, now);
    let htu = format!("{ORIGIN}/api/hello");
    let proof = client.proof(&proof_claims("GET", &htu, now, "w", &token));
    assert!(
        envoy
            .request(request(&token, &proof))
            .unwrap()
            .is_continued()
    );
    // A proof by another key than the token's binding.
    let other = Issuer::es256(23, "other");
    let proof = other.proof(&proof_claims("GET", &htu, now, "x", &token));
    assert_eq!(
        envoy.request(request(&token, &proof)).unwrap().status(),
        Some(401)
    );
    assert_eq!(envoy.metric("oauth2gw.denied.dpop_key_mismatch"), Some(1));
    assert_eq!(envoy.metric("oauth2gw.verify_native"), None);
}

#[test]
fn a_full_replay_cache_fails_closed_and_says_so() {
    let (idp, client) = (Issuer::es256(7, "k1"), Issuer::es256(21, "client"));
    let mut config = dpop_config("allowed");
    config["dpop_replay_cache_entries"] = json!(1024); // one proof per shard
    let mut envoy = ready(options(1).plugin_config(config.to_string()), &idp);
    let now = now_of(&envoy);
    let token = bound_token(&idp, &client, now);
    let htu = format!("{ORIGIN}/api/hello");
    // Proofs until two land in the same shard (1024 shards): that one is refused with 503.
    let mut statuses = Vec::new();
    for i in 0..200 {
        let proof = client.proof(&proof_claims("GET", &htu, now, &format!("j-{i}"), &token));
        let outcome = envoy.request(request(&token, &proof)).unwrap();
        statuses.push(outcome.status().unwrap_or(200));
        if outcome.status() == Some(503) {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");
    assert_eq!(
        envoy.metric("oauth2gw.denied.dpop_replay_cache_full"),
        Some(1)
    );
    assert!(
        !envoy
            .logs_containing(host_test::LogLevel::Error, "replay cache")
            .is_empty()
    );
}
