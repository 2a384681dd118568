//! Per-route rules, scopes, claims, limits and fail-closed behaviour through real Envoy, with the
//! rules of envoy/envoy.yaml.

use e2e::client;
use e2e::stack::{DEMO_CLIENT, Gateway, SHORT_CLIENT, Stack, StackOptions};

fn call(method: &str, url: &str, token: Option<&str>) -> client::Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    match method {
        "GET" => client::get(url, &headers).unwrap(),
        _ => client::post_form(url, &headers, &[]).unwrap(),
    }
}

fn challenge(res: &client::Response) -> String {
    res.header("www-authenticate")
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn rules_scopes_claims_and_limits() {
    let _slot = crate::slot();
    let stack = Stack::start(StackOptions {
        leeway_seconds: 30,
        ..StackOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let g = &stack.gateway_url;
    let rw = stack.token(DEMO_CLIENT, None).unwrap();
    let read_only = stack.token(DEMO_CLIENT, Some("read")).unwrap();
    let short = stack.token(SHORT_CLIENT, None).unwrap();

    // bypass: no token needed, and a bad one is not even looked at
    assert_eq!(
        call("GET", &format!("{g}/healthz"), Some("garbage")).status,
        200
    );
    // allow_missing: no token is fine, a bad token is not
    assert_eq!(
        call("GET", &format!("{g}/api/public/info"), None).status,
        200
    );
    assert_eq!(
        call("GET", &format!("{g}/api/public/info"), Some("garbage")).status,
        401
    );
    // default: token required
    assert_eq!(call("GET", &format!("{g}/api/anything"), None).status, 401);

    // scopes: 403 insufficient_scope naming the scope
    let res = call("GET", &format!("{g}/api/admin/users"), Some(&rw));
    assert_eq!(res.status, 403);
    assert!(
        challenge(&res).contains("error=\"insufficient_scope\"")
            && challenge(&res).contains("scope=\"admin\""),
        "{}",
        challenge(&res)
    );
    // method-specific scope
    assert_eq!(
        call("GET", &format!("{g}/api/orders"), Some(&read_only)).status,
        200
    );
    assert_eq!(
        call("POST", &format!("{g}/api/orders"), Some(&read_only)).status,
        403
    );
    assert_eq!(
        call("POST", &format!("{g}/api/orders"), Some(&rw)).status,
        200
    );
    // claim values (regex route)
    assert_eq!(
        call(
            "GET",
            &format!("{g}/api/clients/demo-client/private"),
            Some(&rw)
        )
        .status,
        200
    );
    assert_eq!(
        call(
            "GET",
            &format!("{g}/api/clients/demo-client/private"),
            Some(&short)
        )
        .status,
        403
    );

    // upstream sees the verified scope, not a forged one
    let res = client::get(
        &format!("{g}/api/orders"),
        &[
            ("authorization", &format!("Bearer {read_only}")),
            ("x-auth-scope", "admin"),
        ],
    )
    .unwrap();
    assert_eq!(res.json().unwrap()["scope"], "read");

    // the resource server's internal endpoints are not reachable through the gateway
    assert_eq!(
        call("POST", &format!("{g}/internal/sessions/revoke"), Some(&rw)).status,
        404
    );

    // limits: an oversized token and two Authorization headers are bad requests
    let big = format!("{rw}{}", "A".repeat(9_000));
    let res = call("GET", &format!("{g}/api/anything"), Some(&big));
    assert_eq!(res.status, 400);
    assert!(challenge(&res).contains("invalid_request"));
    let two = client::get(
        &format!("{g}/api/anything"),
        &[
            ("authorization", &format!("Bearer {rw}")),
            ("authorization", &format!("Bearer {rw}")),
        ],
    )
    .unwrap();
    assert_eq!(two.status, 400, "{}", two.body);
}

#[test]
fn idp_down_cached_keys_keep_working_and_a_cold_gateway_fails_closed() {
    let _slot = crate::slot();
    let mut stack = Stack::start(StackOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let token = stack.token(DEMO_CLIENT, None).unwrap();
    stack.idp.proc.stop();
    // keys fetched before the outage still verify a token never seen before
    assert_eq!(
        call(
            "GET",
            &format!("{}/api/hello", stack.gateway_url),
            Some(&token)
        )
        .status,
        200
    );

    // a gateway that starts while the IDP is down has no keys: 503, never an accept
    let cold = Gateway::start_without_keys(
        stack.dir.path(),
        "cold",
        stack.idp_port,
        stack.rs_port,
        &stack.issuer,
    )
    .unwrap();
    let res = call("GET", &format!("{}/api/hello", cold.url), Some(&token));
    assert_eq!(res.status, 503, "{}", res.body);
    assert!(res.body.contains("not available"), "{}", res.body);
    // and it keeps trying (with backoff), counting failures
    let start = std::time::Instant::now();
    while cold.counter("oauth2gw.jwks_fetch_failed").unwrap_or(0) < 1 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "no failed fetch counted"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        call("GET", &format!("{}/api/hello", cold.url), Some(&token)).status,
        503
    );
}
