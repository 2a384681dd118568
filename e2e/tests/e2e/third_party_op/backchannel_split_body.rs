//! 6. A logout token whose body arrives after the route's upstream answered the request's
//!    headers: the OP sends the headers, then (300 ms later, a slow network or a loaded OP) the
//!    body. The gateway must answer it like any other (here: 200, the session ended).
//!
//! Why it matters: the Wasm module lets a back-channel request's headers go on to the route's
//! upstream while it collects the body (see the module doc). The demo resource server answers
//! `POST /oauth2/backchannel-logout` with a 404 at once, without reading a body; from then on
//! Envoy drops the rest of the request body (`FilterManager::decodeData` returns early once
//! `local_complete_` is set by the upstream's complete response), so the filter never sees the
//! end of the body and never answers. A client that writes the head and the body in two writes
//! (ureq does, with `TCP_NODELAY`) met this by chance on a loaded machine: the flaky
//! `every_backchannel_rule_wasm`, whose posts are now written as an OP writes them (one write,
//! [`super::raw_post`]). This test makes the timing certain.

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
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(s.counter("backchannel_logout_ok"), 1);
    assert_revoked(
        &s.hello(Some(&target_token)),
        "the session ended by the split post",
    );
}

#[test]
#[ignore = "known defect (2026-12-05, filter 855a56e): the Wasm module never answers a back-channel POST whose body arrives after the route's upstream answered the headers (Envoy drops the rest of the body); the cause of every_backchannel_rule_wasm's flakiness, see the module doc; run with --ignored"]
fn body_after_the_upstream_answered_wasm() {
    body_after_the_upstream_answered(Build::Wasm);
}

#[test]
fn body_after_the_upstream_answered_native() {
    body_after_the_upstream_answered(Build::Native);
}
