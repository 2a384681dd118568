//! 6. A logout token whose body arrives after the route's upstream answered the request's
//!    headers: the OP sends the headers, then (300 ms later, a slow network or a loaded OP) the
//!    body. The gateway must answer it like any other (here: 200, the session ended).
//!
//! Why it matters: the Wasm module lets a back-channel request's headers go on towards the
//! route's upstream while it collects the body. Were that upstream to answer first (the demo
//! resource server answers this path 404 at once, without reading a body), Envoy would drop the
//! rest of the request body (`FilterManager::decodeData` returns early once the upstream's
//! complete response set `local_complete_`): the filter would never see it, and now answers 503
//! at once in that case. The deployment that avoids it — and the one these tests run
//! (`e2e::third_party::backchannel_buffer`) — puts Envoy's buffer filter after the gateway's on
//! that route only: no upstream sees the request before the filter answered. A client that
//! writes the head and the body in two writes (ureq does, with `TCP_NODELAY`) met the unbuffered
//! case by chance on a loaded machine (the old flakiness of `every_backchannel_rule_wasm`); this
//! test makes the timing certain.

use super::{
    Setup, assert_revoked, form, logout_claims, logout_header, raw_post, test_access_token,
    test_key, unique,
};
use e2e::third_party::Build;
use std::time::Duration;

/// How long the body waits after the head (the upstream's 404 comes within milliseconds).
const BODY_DELAY: Duration = Duration::from_millis(300);
/// How long the answer may take once the body is sent.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

fn body_after_the_upstream_answered(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind);
    let target = unique("sid-split");
    let target_token = test_access_token(&target);
    assert_eq!(s.hello(Some(&target_token)).status, 200);
    let token = test_key().sign(&logout_header(), &logout_claims(&target));

    let res = raw_post::post(
        &s.backchannel_url(),
        "application/x-www-form-urlencoded",
        &form(&token),
        Some(BODY_DELAY),
        ANSWER_TIMEOUT,
    )
    .unwrap_or_else(|e| {
        panic!(
            "[{kind:?}] a logout token sent {BODY_DELAY:?} after its headers: {e}; \
             resource server 404s so far: {}; Envoy log:\n{}",
            s.stat("cluster.resource_server.upstream_rq_404"),
            s.envoy.log_tail()
        )
    });
    println!(
        "[{kind:?}] body {BODY_DELAY:?} after the headers: {} {}; the resource server's 404s: {}",
        res.status,
        res.body,
        s.stat("cluster.resource_server.upstream_rq_404")
    );
    assert_eq!(res.status, 200, "[{kind:?}] {} {:?}", res.body, res.headers);
    assert_eq!(
        s.stat("cluster.resource_server.upstream_rq_404"),
        0,
        "[{kind:?}] no upstream saw the logout token's request"
    );
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(s.counter("backchannel_logout_ok"), 1);
    assert_revoked(
        &s.hello(Some(&target_token)),
        "the session ended by the split post",
    );
}

#[test]
fn body_after_the_upstream_answered_wasm() {
    body_after_the_upstream_answered(Build::Wasm);
}

#[test]
fn body_after_the_upstream_answered_native() {
    body_after_the_upstream_answered(Build::Native);
}

/// The same split post where Envoy's buffer filter was not added: the native module holds the
/// request itself (200, no upstream sees it); the Wasm module cannot have the rest of the body
/// once the upstream answered, and answers 503 with `Retry-After` at once — the OP's next
/// delivery (here: the same token, head and body in one write) ends the session.
fn split_body_without_the_buffer_filter(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start_unbuffered(kind);
    let target = unique("sid-unbuffered");
    let target_token = test_access_token(&target);
    assert_eq!(s.hello(Some(&target_token)).status, 200);
    let token = test_key().sign(&logout_header(), &logout_claims(&target));
    let split = |delay| {
        raw_post::post(
            &s.backchannel_url(),
            "application/x-www-form-urlencoded",
            &form(&token),
            delay,
            ANSWER_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("[{kind:?}] {e}; Envoy log:\n{}", s.envoy.log_tail()))
    };
    let res = split(Some(BODY_DELAY));
    println!(
        "[{kind:?}] unbuffered, body {BODY_DELAY:?} after the headers: {} {}",
        res.status, res.body
    );
    if kind == Build::Wasm {
        assert_eq!(res.status, 503, "[{kind:?}] {}", res.body);
        assert_eq!(res.header("retry-after"), Some("1"));
        assert_eq!(res.header("cache-control"), Some("no-store"));
        assert!(res.body.contains("temporarily_unavailable"), "{}", res.body);
        assert_eq!(s.counter("backchannel_logout_unavailable"), 1);
        assert_eq!(
            s.hello(Some(&target_token)).status,
            200,
            "nothing changed yet"
        );
        // the OP delivers it again
        let again = split(None);
        assert_eq!(again.status, 200, "[{kind:?}] {}", again.body);
    } else {
        assert_eq!(res.status, 200, "[{kind:?}] {}", res.body);
        assert_eq!(
            s.stat("cluster.resource_server.upstream_rq_404"),
            0,
            "[{kind:?}] the native module holds the request itself"
        );
    }
    assert_eq!(s.counter("backchannel_logout_ok"), 1);
    assert_revoked(
        &s.hello(Some(&target_token)),
        "the session ended by the delivered token",
    );
}

#[test]
fn split_body_without_the_buffer_filter_wasm() {
    split_body_without_the_buffer_filter(Build::Wasm);
}

#[test]
fn split_body_without_the_buffer_filter_native() {
    split_body_without_the_buffer_filter(Build::Native);
}
