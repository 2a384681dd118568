//! 2. `introspect: "always"` with the OP's JWTs, which it does not introspect (503).
//! 3. RFC 9701: JWT introspection answers, verified with the OP's keys.
//! 10. RFC 9701 answers right after start (a timing-dependent probe).

use super::{
    Setup, assert_invalid_token, assert_service_allowed, assert_unavailable, introspection, shape,
};
use e2e::oidc_provider::{RESOURCE_ES256, RESOURCE_OPAQUE, RESOURCE_RS256};
use e2e::third_party::{Build, unique};
use serde_json::json;
use std::time::Duration;

/// `introspect: "always"` is for IDPs that introspect their own JWT access tokens (to see a
/// revocation at once). oidc-provider refuses to (400 `unsupported_token_type`, "Structured JWT
/// Tokens cannot be introspected"), so the gateway never gets a usable answer for a JWT that its
/// local checks accept: 503 with `Retry-After`, never a 200 on the local checks alone. Configure
/// this mode only in front of an IDP that introspects its JWTs.
fn introspect_always_with_jwts(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| {
        shape(
            vec![RESOURCE_ES256, RESOURCE_RS256],
            introspection(
                op.port(),
                json!({"introspect": "always", "cache_seconds": 30}),
            ),
            true,
        )
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
    introspect_always_with_jwts(Build::Wasm);
}

#[test]
fn introspect_always_with_jwts_native() {
    introspect_always_with_jwts(Build::Native);
}

// ---------------------------------------------------------------------------------------------
// 3. RFC 9701: JWT introspection answers, verified with the OP's keys

fn jwt_introspection_response(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| {
        shape(
            vec![RESOURCE_OPAQUE],
            introspection(
                op.port(),
                json!({"jwt_response": true, "cache_seconds": 30}),
            ),
            // the answers are signed with the OP's keys
            true,
        )
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
    jwt_introspection_response(Build::Wasm);
}

#[test]
fn jwt_introspection_response_native() {
    jwt_introspection_response(Build::Native);
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
fn rfc9701_right_after_start(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| {
        shape(
            vec![RESOURCE_OPAQUE],
            introspection(op.port(), json!({"jwt_response": true})),
            true,
        )
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
    rfc9701_right_after_start(Build::Wasm);
}

#[test]
#[ignore = "timing-dependent probe of a Wasm start-up window (see the doc); run with --ignored"]
fn rfc9701_right_after_start_native() {
    rfc9701_right_after_start(Build::Native);
}
