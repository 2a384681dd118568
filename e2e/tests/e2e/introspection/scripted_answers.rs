//! 5. Answers oidc-provider cannot be made to give, from the scripted endpoint; an RFC 9701
//!    answer signed by the OP's new key.
//! 7. `introspect: "always"` with an IDP that introspects its JWTs (the scripted endpoint).

use super::scripted_endpoint::{SCRIPTED_AUDIENCE, SCRIPTED_ISSUER, ScriptedOp};
use super::{assert_invalid_token, assert_unavailable, sleep_until};
use e2e::third_party::{Build, now_secs, unique};
use serde_json::json;
use std::time::{Duration, Instant};
use test_support::Issuer;

/// Answers the RFC allows and the gateway must judge: `iss` absent (the provider's assumed),
/// another issuer or audience (refused), an `exp` before `cache_seconds` ends (asked again after
/// `exp`: never a positive past it), no answer within `timeout_ms` (503).
fn scripted_answers(kind: Build) {
    let _slot = crate::slot();
    let op = ScriptedOp::start();
    let s = op.gateway(
        kind,
        json!({"cache_seconds": 30, "negative_cache_seconds": 5, "timeout_ms": 1000}),
        false,
    );

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
    let exp = now_secs() + 2;
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
    scripted_answers(Build::Wasm);
}

#[test]
fn scripted_answers_native() {
    scripted_answers(Build::Native);
}

/// The OP rotated its signing key: it publishes the new key in its JWKS, then signs RFC 9701
/// answers with it. A JWT access token with an unknown `kid` makes the gateway fetch the JWKS
/// early (throttled by `min_early_refresh_seconds`, 1 s here); an introspection answer with an
/// unknown `kid` does too (503 meanwhile), not only the next scheduled refresh (`refresh_seconds`,
/// 300 s here). Before 19e58c8 every such answer was a 503 until then.
fn rotated_key_answers(kind: Build) {
    let _slot = crate::slot();
    let op = ScriptedOp::start();
    op.publish(&[(61, "key-a")], (61, "key-a"));
    let s = op.gateway(
        kind,
        json!({"jwt_response": true, "cache_seconds": 30, "timeout_ms": 1000}),
        true,
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
    let now = now_secs();
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
    rotated_key_answers(Build::Wasm);
}

#[test]
fn rotated_key_answers_native() {
    rotated_key_answers(Build::Native);
}

// ---------------------------------------------------------------------------------------------
// 7. introspect: "always" with an IDP that introspects its JWTs (the scripted endpoint)

/// What `introspect: "always"` is for: the IDP's JWTs are validated locally and then
/// introspected, so that a token the IDP revoked is refused at once (here: the endpoint answers
/// by the JWT's `sub`). A JWT the local checks refuse is never introspected.
fn introspect_always_scripted(kind: Build) {
    let _slot = crate::slot();
    let op = ScriptedOp::start();
    op.publish(&[(71, "key-a")], (71, "key-a"));
    let s = op.gateway(
        kind,
        json!({"introspect": "always", "cache_seconds": 30, "timeout_ms": 1000}),
        true,
    );
    let key = Issuer::es256(71, "key-a");
    let now = now_secs();
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
    introspect_always_scripted(Build::Wasm);
}

#[test]
fn introspect_always_scripted_native() {
    introspect_always_scripted(Build::Native);
}
