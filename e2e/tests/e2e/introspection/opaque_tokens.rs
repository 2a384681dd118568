//! 1. Opaque tokens: cached once per Envoy (shared by the workers), inactive answers kept, the
//!    cache's expiry, a revocation at the OP, the OP's introspection failing or stopped.
//! 4. Concurrent first requests for one token: one call in flight per token.

use super::{
    CACHE_SECONDS, NEGATIVE_CACHE_SECONDS, Setup, assert_invalid_token, assert_service_allowed,
    assert_unavailable, introspection, shape, sleep_until,
};
use e2e::oidc_provider::RESOURCE_OPAQUE;
use e2e::third_party::{Build, now_f64, unique};
use serde_json::json;
use std::time::Duration;

fn opaque_tokens(kind: Build) {
    let _slot = crate::slot();
    let mut s = Setup::start(kind, |op| {
        shape(
            vec![RESOURCE_OPAQUE],
            introspection(
                op.port(),
                json!({
                    "introspect": "opaque",
                    "cache_seconds": CACHE_SECONDS,
                    "negative_cache_seconds": NEGATIVE_CACHE_SECONDS,
                }),
            ),
            // an opaque-only provider needs no keys
            false,
        )
    });
    let cache = CACHE_SECONDS as f64;

    // -- once per Envoy per TTL: 20 sequential requests, each on a new connection
    let token = s.opaque_token();
    let before = s.introspections();
    let workers_before = s.worker_connections();
    let t0 = now_f64();
    for i in 0..20 {
        assert_service_allowed(&s, &s.hello(&token), &format!("opaque token, request #{i}"));
    }
    let t1 = now_f64();
    let workers_after = s.worker_connections();
    let calls = s.introspections() - before;
    println!(
        "[{kind:?}] 20 requests in {:.0} ms, {calls} introspection(s), connections per worker {:?} -> {:?}",
        (t1 - t0) * 1000.0,
        workers_before,
        workers_after
    );
    // The answer lives until floor(now) + cache_seconds: at least cache_seconds - 1 s.
    assert!(
        t1 - t0 < cache - 1.0,
        "[{kind:?}] 20 requests took {:.1} s: too slow to count calls within one cache time",
        t1 - t0
    );
    assert_eq!(
        calls, 1,
        "[{kind:?}] the OP must be asked once per Envoy for 20 requests within the cache time"
    );
    assert_eq!(s.counter("introspection_call_ok"), 1);
    assert!(
        (0..2).all(|w| workers_after[w] > workers_before[w]),
        "[{kind:?}] both workers must have served some of the 20 connections (the answer shared \
         by the workers): {workers_before:?} -> {workers_after:?}"
    );
    // Upper bound of when that answer dies (Envoy's clock read after t0, before t1).
    let first_dies_by = t1 + cache;

    // -- a user's opaque token: its subject reaches the resource server
    let user = s
        .op()
        .login("alice", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!user.access_token.contains('.'), "{}", user.access_token);
    let res = s.hello(&user.access_token);
    assert_eq!(res.status, 200, "[{kind:?}] user token: {}", res.body);
    let body = res.json().unwrap();
    assert_eq!(body["sub"], "alice", "[{kind:?}] {body}");
    assert_eq!(body["client_id"], "webapp", "[{kind:?}] {body}");
    // the session's per-client sid (the OP's extraTokenClaims) comes with the answer
    assert_eq!(body["sid"], user.sid.as_str(), "[{kind:?}] {body}");
    assert_eq!(body["issuer"], s.op().issuer(), "[{kind:?}] {body}");

    // -- inactive: 401 invalid_token, kept for negative_cache_seconds
    let garbage = unique("garbage-opaque-token");
    let before = s.introspections();
    let inactive_before = s.counter("denied.inactive");
    assert_invalid_token(&s.hello(&garbage), "garbage token");
    assert_eq!(
        s.introspections(),
        before + 1,
        "[{kind:?}] garbage: one introspection"
    );
    for i in 0..4 {
        assert_invalid_token(&s.hello(&garbage), &format!("garbage token again #{i}"));
    }
    assert_eq!(
        s.introspections(),
        before + 1,
        "[{kind:?}] an inactive answer is kept for negative_cache_seconds: no new call"
    );
    assert_eq!(s.counter("denied.inactive"), inactive_before + 5);

    // -- after cache_seconds: asked again, once
    sleep_until(first_dies_by + 0.05);
    let before = s.introspections();
    assert_service_allowed(&s, &s.hello(&token), "after cache_seconds");
    assert_eq!(
        s.introspections(),
        before + 1,
        "[{kind:?}] after cache_seconds the token is introspected again"
    );
    for i in 0..5 {
        assert_service_allowed(&s, &s.hello(&token), &format!("cached again #{i}"));
    }
    assert_eq!(s.introspections(), before + 1, "[{kind:?}] cached again");

    // -- revoked at the OP: refused within cache_seconds + 1 s
    let revoked = s.opaque_token();
    let cached_at = now_f64();
    assert_service_allowed(&s, &s.hello(&revoked), "before revocation");
    s.op()
        .revoke(&revoked, Some("access_token"))
        .unwrap_or_else(|e| panic!("{e}"));
    let revoked_at = now_f64();
    let refused_at = loop {
        let sent = now_f64();
        let res = s.hello(&revoked);
        if res.status == 401 {
            assert_invalid_token(&res, "revoked token");
            break sent;
        }
        assert_service_allowed(&s, &res, "revoked token, still cached");
        assert!(
            sent < cached_at + cache + 1.0,
            "[{kind:?}] a token revoked at the OP still accepted {:.1} s after it was cached \
             (cache_seconds {CACHE_SECONDS})",
            sent - cached_at
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "[{kind:?}] revoked token refused {:.2} s after the revocation ({:.2} s after it was cached)",
        refused_at - revoked_at,
        refused_at - cached_at
    );
    for i in 0..4 {
        assert_invalid_token(&s.hello(&revoked), &format!("revoked token again #{i}"));
    }

    // -- the OP's introspection failing
    let cached = s.opaque_token();
    let cached_from = now_f64();
    assert_service_allowed(&s, &s.hello(&cached), "cached before the failure");
    let cached_until = now_f64() + cache;
    s.op()
        .set_introspection_failing(true)
        .unwrap_or_else(|e| panic!("{e}"));
    let fresh = s.opaque_token();
    let before = s.introspections();
    let unavailable_before = s.counter("denied.introspection_unavailable");
    let failed_before = s.counter("introspection_call_failed");
    assert_unavailable(&s.hello(&fresh), "a token never cached, OP failing");
    assert_unavailable(&s.hello(&fresh), "again, OP failing");
    assert_eq!(
        s.introspections(),
        before + 2,
        "[{kind:?}] a failed introspection is not cached: asked again"
    );
    assert_eq!(
        s.counter("denied.introspection_unavailable"),
        unavailable_before + 2
    );
    assert_eq!(s.counter("introspection_call_failed"), failed_before + 2);
    // the token cached before: 200 within its cache time (at least cache_seconds - 1 s), then 503
    let mut last_200 = None;
    let mut first_503 = None;
    loop {
        let sent = now_f64();
        if sent > cached_until + 0.5 {
            break;
        }
        let res = s.hello(&cached);
        if res.status == 200 {
            assert!(
                first_503.is_none(),
                "[{kind:?}] the cached token accepted again after a 503"
            );
            assert!(
                sent < cached_until,
                "[{kind:?}] a stale positive: accepted {:.2} s after its answer died",
                sent - cached_until
            );
            last_200 = Some(sent);
        } else {
            assert_unavailable(&res, "the cached token after its cache time, OP failing");
            // the answer lived until floor(now) + cache_seconds > cached_from + cache_seconds - 1
            let got = now_f64();
            assert!(
                got >= cached_from + cache - 1.0,
                "[{kind:?}] the cached token refused {:.2} s after it was cached, before its \
                 cache time ended",
                sent - cached_from
            );
            first_503.get_or_insert(sent);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let last_200 = last_200.expect("the cached token was never accepted while the OP failed");
    let first_503 = first_503.expect("the cached token never refused after its cache time");
    println!(
        "[{kind:?}] OP failing: cached token accepted until +{:.2} s, 503 from +{:.2} s (cache_seconds {CACHE_SECONDS})",
        last_200 - cached_from,
        first_503 - cached_from
    );
    assert_unavailable(&s.hello(&cached), "the cached token, OP still failing");

    // -- the OP back: both tokens accepted
    s.op()
        .set_introspection_failing(false)
        .unwrap_or_else(|e| panic!("{e}"));
    let fresh_cached_from = now_f64();
    assert_service_allowed(&s, &s.hello(&fresh), "OP back, the token never cached");
    assert_service_allowed(&s, &s.hello(&cached), "OP back, the token cached before");

    // -- the OP stopped (its process killed): a token never seen → 503 with Retry-After
    let spare = s.opaque_token();
    s.op_proc = None;
    let failed_before = s.counter("introspection_call_failed");
    assert_unavailable(&s.hello(&spare), "OP stopped, a token never cached");
    assert_eq!(s.counter("introspection_call_failed"), failed_before + 1);
    // a token cached less than cache_seconds - 1 s ago still works
    let res = s.hello(&fresh);
    if now_f64() < fresh_cached_from + cache - 1.0 {
        assert_service_allowed(&s, &res, "OP stopped, a token cached just before");
    }
}

#[test]
fn opaque_tokens_wasm() {
    opaque_tokens(Build::Wasm);
}

#[test]
fn opaque_tokens_native() {
    opaque_tokens(Build::Native);
}

// ---------------------------------------------------------------------------------------------
// 4. Concurrent first requests for one token: one call in flight per token (issue 26 §3)

/// Issue 26 §3 asks for "one call in flight per token": 8 concurrent first requests with one
/// token (on every worker) make one introspection call; the others wait for its answer
/// (`filter::validation::introspection_flight`). Before it (filters 70e31c6 to 19e58c8) they
/// made 8.
fn concurrent_first_requests_share_one_call(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| {
        shape(
            vec![RESOURCE_OPAQUE],
            introspection(op.port(), json!({"cache_seconds": 30})),
            false,
        )
    });
    for round in 0..3 {
        let token = s.opaque_token();
        let before = s.introspections();
        let barrier = std::sync::Barrier::new(8);
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        s.hello(&token).status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let calls = s.introspections() - before;
        println!(
            "[{kind:?}] round {round}: 8 concurrent first requests {statuses:?}, {calls} introspection(s)"
        );
        assert!(statuses.iter().all(|&st| st == 200), "{statuses:?}");
        assert_eq!(
            calls, 1,
            "[{kind:?}] 8 concurrent first requests with one token: one call in flight per token"
        );
    }
}

#[test]
fn concurrent_first_requests_share_one_call_wasm() {
    concurrent_first_requests_share_one_call(Build::Wasm);
}

#[test]
fn concurrent_first_requests_share_one_call_native() {
    concurrent_first_requests_share_one_call(Build::Native);
}
