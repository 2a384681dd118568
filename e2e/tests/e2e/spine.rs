//! The spine, end to end: a token from the real IDP through real Envoy running filter.wasm to the
//! demo resource server; and every way a bad token is refused with RFC 6750's challenge.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::client;
use e2e::process::free_port;
use e2e::stack::{
    DEMO_CLIENT, OTHER_CLIENT, SHORT_CLIENT, Stack, StackOptions, start_idp, token_from,
};
use std::time::Duration;

fn call(stack: &Stack, token: Option<&str>) -> client::Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    client::get(&format!("{}/api/hello", stack.gateway_url), &headers).unwrap()
}

fn assert_invalid_token(res: &client::Response, case: &str) {
    assert_eq!(res.status, 401, "{case}: {}", res.body);
    let challenge = res.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{case}: challenge {challenge:?}"
    );
}

#[test]
fn spine_token_through_envoy() {
    let _slot = crate::slot();
    let stack = Stack::start(StackOptions::default()).unwrap_or_else(|e| panic!("{e}"));

    // A valid token: 200, and the resource server sees who called.
    let token = stack.token(DEMO_CLIENT, None).unwrap();
    let res = call(&stack, Some(&token));
    assert_eq!(res.status, 200, "valid token: {}", res.body);
    let body = res.json().unwrap();
    assert_eq!(body["sub"], "client:demo-client");
    assert_eq!(body["client_id"], "demo-client");
    assert_eq!(body["issuer"], stack.issuer.as_str());
    assert_eq!(stack.counter("oauth2gw.allowed"), Some(1));
    // One miss; two when this worker had not yet picked up the keys another thread fetched (it
    // looks again and retries).
    assert!(matches!(stack.counter("oauth2gw.cache_miss"), Some(1 | 2)));
    // Envoy 1.40 has the verify_signature foreign function: ES256 was verified natively.
    assert_eq!(stack.counter("oauth2gw.verify_native"), Some(1));

    // A client cannot forge the identity headers.
    let forged = client::get(
        &format!("{}/api/hello", stack.gateway_url),
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-auth-sub", "admin"),
        ],
    )
    .unwrap();
    assert_eq!(forged.json().unwrap()["sub"], "client:demo-client");

    // Seen before: served from the verified-token cache (two workers: at least one sees it again).
    for _ in 0..4 {
        assert_eq!(call(&stack, Some(&token)).status, 200);
    }
    assert!(
        stack.counter("oauth2gw.cache_hit").unwrap_or(0) >= 1,
        "no cache hit"
    );

    // No token: 401 with a bare challenge (RFC 6750 §3.1: no error code).
    let res = call(&stack, None);
    assert_eq!(res.status, 401);
    let challenge = res.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"gateway\""),
        "{challenge}"
    );
    assert!(!challenge.contains("error="), "{challenge}");

    // Tampered: one claim changed, signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = "read write admin".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert_invalid_token(&call(&stack, Some(&tampered)), "tampered");

    // Garbage.
    assert_invalid_token(&call(&stack, Some("not.a.jwt")), "garbage");

    // Wrong audience: a token the IDP issued for another API.
    let other = stack.token(OTHER_CLIENT, None).unwrap();
    assert_invalid_token(&call(&stack, Some(&other)), "wrong audience");

    // Unknown key: a second IDP with the same issuer name but its own signing key.
    let dir = tempfile::tempdir().unwrap();
    let rogue = start_idp(dir.path(), "rogue-idp", free_port().unwrap(), &stack.issuer).unwrap();
    let forged = token_from(&rogue.url, DEMO_CLIENT, None).unwrap();
    assert_invalid_token(&call(&stack, Some(&forged)), "unknown key");

    // Expired: a one-second token, used after it expired (the stack runs with zero leeway).
    let short = stack.token(SHORT_CLIENT, None).unwrap();
    assert_eq!(
        call(&stack, Some(&short)).status,
        200,
        "short-lived token while fresh"
    );
    std::thread::sleep(Duration::from_millis(2_100));
    let res = call(&stack, Some(&short));
    assert_invalid_token(&res, "expired");
    assert!(
        res.header("www-authenticate")
            .unwrap_or_default()
            .contains("expired"),
        "{:?}",
        res.header("www-authenticate")
    );

    // Each refusal was counted under its reason, and the JWKS was fetched once for the Envoy
    // (main thread + 2 workers), not once per thread.
    assert_eq!(stack.counter("oauth2gw.denied.missing"), Some(1));
    assert_eq!(stack.counter("oauth2gw.denied.bad_signature"), Some(1));
    assert_eq!(stack.counter("oauth2gw.denied.wrong_audience"), Some(1));
    assert_eq!(stack.counter("oauth2gw.denied.expired"), Some(1));
    assert_eq!(stack.counter("oauth2gw.jwks_fetch_ok"), Some(1));
}
