//! 4. Every OIDC Back-Channel Logout 1.0 §2.6 rule broken once → 400 and nothing changes; a
//!    replayed `jti` refused; and the refusals made on the headers alone.

use super::{
    MAX_BODY_BYTES, Setup, TEST_KID, assert_refused_400, assert_revoked, form, logout_claims,
    logout_header, now, test_access_token, test_key, unique,
};
use e2e::client;
use e2e::third_party::Build;
use serde_json::{Value, json};
use std::time::Duration;
use test_support::{Issuer, b64};

fn every_backchannel_rule(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind);
    let key = test_key();
    let target = unique("sid-target");
    let target_token = test_access_token(&target);
    assert_eq!(
        s.hello(Some(&target_token)).status,
        200,
        "test issuer's token"
    );
    // a real session at the OP, targeted by a forged token in the OP's name
    let user = s.login("dave");
    assert_eq!(s.hello(Some(&user.access_token)).status, 200);

    let signed = |f: &dyn Fn(&mut Value)| {
        let mut claims = logout_claims(&target);
        f(&mut claims);
        key.sign(&logout_header(), &claims)
    };
    let now = now();
    let none_header = b64(br#"{"alg":"none","typ":"logout+jwt"}"#);
    let none_payload = b64(logout_claims(&target).to_string().as_bytes());
    let other_key = Issuer::es256(42, TEST_KID);
    // the OP's own ES256 kid, signed with a key that is not the OP's
    let op_kid = s.op_es256_kid();
    let mut forged_op = logout_claims(&user.sid);
    forged_op["iss"] = s.op.issuer().into();
    forged_op["sub"] = "dave".into();
    let forged_op = key.sign(
        &json!({"alg": "ES256", "typ": "logout+jwt", "kid": op_kid}),
        &forged_op,
    );

    let cases: Vec<(&str, String)> = vec![
        ("wrong aud", signed(&|c| c["aud"] = "other-client".into())),
        (
            "wrong iss",
            signed(&|c| c["iss"] = "https://unknown.invalid".into()),
        ),
        (
            "iss of the other provider",
            signed(&|c| c["iss"] = s.op.issuer().into()),
        ),
        (
            "signature by another key",
            other_key.sign(&logout_header(), &logout_claims(&target)),
        ),
        ("forged in the OP's name (OP's kid, not its key)", forged_op),
        // refused (400) before the algorithm is read: an empty signature segment fails the split
        // that finds the issuer, so the answer says "issuer is not accepted" (only the text is off)
        ("alg none", format!("{none_header}.{none_payload}.")),
        (
            "alg none with a signature segment",
            format!("{none_header}.{none_payload}.{}", b64(b"sig")),
        ),
        ("alg HS256 (key confusion)", {
            let header = b64(br#"{"alg":"HS256","typ":"logout+jwt","kid":"bcl-test-key"}"#);
            format!("{header}.{none_payload}.{}", b64(&[7u8; 32]))
        }),
        ("a nonce", signed(&|c| c["nonce"] = "n-0S6_WzA2Mj".into())),
        (
            "no events",
            signed(&|c| {
                c.as_object_mut().unwrap().remove("events");
            }),
        ),
        (
            "events without the back-channel event",
            signed(&|c| c["events"] = json!({"http://example.com/other": {}})),
        ),
        (
            "neither sid nor sub",
            signed(&|c| {
                let c = c.as_object_mut().unwrap();
                c.remove("sid");
                c.remove("sub");
            }),
        ),
        (
            "expired",
            signed(&|c| {
                c["iat"] = (now - 300).into();
                c["exp"] = (now - 200).into();
            }),
        ),
        (
            "issued too long ago",
            signed(&|c| c["iat"] = (now - 700).into()),
        ),
        (
            "no jti",
            signed(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        ("typ of an access token", {
            let mut header = logout_header();
            header["typ"] = "at+jwt".into();
            key.sign(&header, &logout_claims(&target))
        }),
        (
            "an access token instead of a logout token",
            target_token.clone(),
        ),
    ];
    let mut refused = 0;
    for (what, token) in &cases {
        let res = s.post_logout_token(token);
        println!("[{kind:?}] {what:50} {} {}", res.status, res.body);
        assert_refused_400(&res, what);
        refused += 1;
    }

    // the body itself: a valid token, sent wrongly
    let valid = key.sign(&logout_header(), &logout_claims(&target));
    for (what, content_type, body) in [
        (
            "wrong content type (JSON)",
            "application/json",
            json!({"logout_token": valid}).to_string(),
        ),
        (
            "wrong content type (form body as text/plain)",
            "text/plain",
            form(&valid),
        ),
        (
            "oversized body",
            "application/x-www-form-urlencoded",
            format!("{}&padding={}", form(&valid), "a".repeat(MAX_BODY_BYTES)),
        ),
        (
            "no logout_token",
            "application/x-www-form-urlencoded",
            "token=abc".to_owned(),
        ),
        (
            "empty body",
            "application/x-www-form-urlencoded",
            String::new(),
        ),
        (
            "two logout_tokens",
            "application/x-www-form-urlencoded",
            format!("{}&{}", form(&valid), form(&valid)),
        ),
    ] {
        let res = s.post_backchannel(content_type, &body);
        println!("[{kind:?}] {what:50} {} {}", res.status, res.body);
        assert_refused_400(&res, what);
        refused += 1;
    }
    // GET: 405 with Allow: POST
    let res = client::get(&s.backchannel_url(), &[]).unwrap();
    assert_eq!(res.status, 405, "GET: {}", res.body);
    assert_eq!(res.header("allow"), Some("POST"), "{:?}", res.headers);
    refused += 1;

    // nothing changed: the targeted sessions' tokens still pass, nothing was counted as ok
    assert_eq!(s.counter("backchannel_logout_ok"), 0);
    assert_eq!(
        s.hello(Some(&target_token)).status,
        200,
        "target after refusals"
    );
    assert_eq!(
        s.hello(Some(&user.access_token)).status,
        200,
        "OP session after refusals"
    );

    // replayed jti: the first post of a valid token (for another session) is accepted and ends
    // that session; the same token again is refused and changes nothing
    // 17 signature checks so far at most; a new second gives a fresh per-worker budget (20/s)
    std::thread::sleep(Duration::from_millis(1100));
    let replay_sid = unique("sid-replay");
    let replay_victim = test_access_token(&replay_sid);
    assert_eq!(s.hello(Some(&replay_victim)).status, 200);
    let once = key.sign(&logout_header(), &logout_claims(&replay_sid));
    let first = s.post_logout_token(&once);
    assert_eq!(first.status, 200, "first post: {}", first.body);
    assert_eq!(first.header("cache-control"), Some("no-store"));
    assert_revoked(
        &s.hello(Some(&replay_victim)),
        "the session ended by the valid token",
    );
    let second = s.post_logout_token(&once);
    println!(
        "[{kind:?}] {:50} {} {}",
        "replayed jti", second.status, second.body
    );
    assert_refused_400(&second, "replayed jti");
    assert!(second.body.contains("received before"), "{}", second.body);
    refused += 1;

    assert_eq!(s.counter("backchannel_logout_ok"), 1);
    assert_eq!(s.counter("backchannel_logout_refused"), refused);
    assert_eq!(
        s.hello(Some(&target_token)).status,
        200,
        "target at the end"
    );
    assert_eq!(
        s.hello(Some(&user.access_token)).status,
        200,
        "OP session at the end"
    );
}

// Flaky until its posts were written as an OP writes them (one write, see `raw_post`): ureq's two
// writes sometimes let the route's upstream answer the head first, and the Wasm module then never
// answered (that defect is `backchannel_split_body`'s).
#[test]
fn every_backchannel_rule_wasm() {
    every_backchannel_rule(Build::Wasm);
}

#[test]
fn every_backchannel_rule_native() {
    every_backchannel_rule(Build::Native);
}

/// What both modules decide on the request's headers alone (the part of the receiver the Wasm
/// module runs on real Envoy today, see the module doc): GET, a wrong content type, a declared
/// length over the bound → refused at once, and nothing changes.
fn backchannel_refusals_on_headers(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind);
    let target = unique("sid-target");
    let target_token = test_access_token(&target);
    assert_eq!(s.hello(Some(&target_token)).status, 200);
    let valid = test_key().sign(&logout_header(), &logout_claims(&target));

    let res = client::get(&s.backchannel_url(), &[]).unwrap();
    assert_eq!(res.status, 405, "GET: {}", res.body);
    assert_eq!(res.header("allow"), Some("POST"), "{:?}", res.headers);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    for (what, content_type, body) in [
        (
            "wrong content type (JSON)",
            "application/json",
            json!({"logout_token": valid}).to_string(),
        ),
        (
            "declared length over max_body_bytes",
            "application/x-www-form-urlencoded",
            format!("{}&padding={}", form(&valid), "a".repeat(MAX_BODY_BYTES)),
        ),
    ] {
        let res = s.post_backchannel(content_type, &body);
        assert_refused_400(&res, what);
    }
    assert_eq!(s.counter("backchannel_logout_refused"), 3);
    assert_eq!(s.counter("backchannel_logout_ok"), 0);
    assert_eq!(s.hello(Some(&target_token)).status, 200, "nothing changed");
}

#[test]
fn backchannel_refusals_on_headers_wasm() {
    backchannel_refusals_on_headers(Build::Wasm);
}

#[test]
fn backchannel_refusals_on_headers_native() {
    backchannel_refusals_on_headers(Build::Native);
}
