//! The logout sequence through real Envoy: revocation at the IDP, session end at the resource
//! server, the token refused at once on this gateway and within the poll interval on another; and
//! every failure path answered with the failing step named, never a false success.

use e2e::client;
use e2e::stack::{DEMO_CLIENT, GATEWAY_CLIENT, Stack, StackOptions, password_login, refresh};
use serde_json::Value;
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn hello(gateway: &str, token: &str) -> client::Response {
    let auth = format!("Bearer {token}");
    client::get(&format!("{gateway}/api/hello"), &[("authorization", &auth)]).unwrap()
}

fn logout(gateway: &str, token: Option<&str>) -> client::Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    client::post_form(&format!("{gateway}/oauth2/logout"), &headers, &[]).unwrap()
}

fn introspect_active(stack: &Stack, token: &str) -> bool {
    let (id, secret) = GATEWAY_CLIENT;
    let res = client::post_form(
        &format!("{}/oauth2/introspect", stack.idp.url),
        &[],
        &[
            ("token", token),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.body);
    res.json().unwrap()["active"].as_bool().unwrap()
}

fn failed_steps(res: &client::Response) -> Vec<String> {
    let body: Value = res.json().unwrap();
    body["failed_steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["step"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn logout_revokes_everywhere() {
    let _slot = crate::slot();
    let stack = Stack::start(StackOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let b = stack
        .another_gateway("envoy-b")
        .unwrap_or_else(|e| panic!("{e}"));
    let a = &stack.gateway_url;

    let token = stack.token(DEMO_CLIENT, None).unwrap();
    let survivor = stack.token(DEMO_CLIENT, None).unwrap();
    assert_eq!(hello(a, &token).status, 200);
    assert_eq!(hello(&b.url, &token).status, 200);

    // Logout needs a valid token.
    let res = logout(a, None);
    assert_eq!(res.status, 401, "{}", res.body);
    assert_eq!(logout(a, Some("not.a.token")).status, 401);

    let res = logout(a, Some(&token));
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json().unwrap()["status"], "logged_out");
    let logged_out_at = Instant::now();

    // Refused on this gateway at once.
    let res = hello(a, &token);
    assert_eq!(res.status, 401);
    assert!(
        res.header("www-authenticate")
            .unwrap_or("")
            .contains("revoked"),
        "{:?}",
        res.headers
    );
    // The IDP no longer considers it active.
    assert!(!introspect_active(&stack, &token));

    // Refused on the other gateway within the poll interval (500 ms; generous bound here).
    loop {
        if hello(&b.url, &token).status == 401 {
            break;
        }
        assert!(
            logged_out_at.elapsed() < Duration::from_secs(5),
            "gateway B still accepts the revoked token"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "revocation reached gateway B after {:?}",
        logged_out_at.elapsed()
    );

    // Other tokens are untouched.
    assert_eq!(hello(a, &survivor).status, 200);
    assert_eq!(hello(&b.url, &survivor).status, 200);

    // A repeated logout is idempotent and says so.
    let again = logout(&b.url, Some(&token));
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("already revoked"), "{}", again.body);

    // A GET on the logout path is not a logout.
    let res = client::get(
        &format!("{a}/oauth2/logout"),
        &[("authorization", &format!("Bearer {survivor}"))],
    )
    .unwrap();
    assert_eq!(res.status, 405);
    assert_eq!(stack.counter("oauth2gw.logout_ok"), Some(1));
}

#[test]
fn user_logout_ends_the_session_everywhere() {
    let _slot = crate::slot();
    let stack = Stack::start(StackOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let b = stack
        .another_gateway("envoy-b")
        .unwrap_or_else(|e| panic!("{e}"));
    let a = &stack.gateway_url;
    let login = password_login(&stack.idp.url).unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh_token = login["refresh_token"].as_str().unwrap().to_owned();
    // A second access token of the same session (refresh), used on gateway B.
    let (status, refreshed) = refresh(&stack.idp.url, &refresh_token).unwrap();
    assert_eq!(status, 200, "{refreshed}");
    let sibling = refreshed["access_token"].as_str().unwrap().to_owned();
    let newest_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();

    // The resource server keeps state for the session.
    let auth = format!("Bearer {access}");
    let session = client::get(&format!("{a}/api/session"), &[("authorization", &auth)]).unwrap();
    assert_eq!(session.status, 200, "{}", session.body);
    let sid = session.json().unwrap()["sid"].as_str().unwrap().to_owned();
    assert_eq!(hello(&b.url, &sibling).status, 200);

    let res = logout(a, Some(&access));
    assert_eq!(res.status, 200, "{}", res.body);
    let at = Instant::now();

    // The session is gone at the resource server (asked directly, as the gateway would forward).
    let rs = format!("http://127.0.0.1:{}/api/session", stack.rs_port);
    let direct = client::get(&rs, &[("x-auth-sid", &sid), ("x-auth-sub", "alice")]).unwrap();
    assert_eq!(direct.status, 401, "{}", direct.body);
    // Every token of the session dies: the sibling access token on A at once, on B within the
    // poll interval; the refresh token at the IDP.
    assert_eq!(hello(a, &sibling).status, 401);
    while hello(&b.url, &sibling).status != 401 {
        assert!(
            at.elapsed() < Duration::from_secs(5),
            "gateway B still accepts a token of the ended session"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = refresh(&stack.idp.url, &newest_refresh).unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[test]
fn logout_names_the_step_that_failed() {
    let _slot = crate::slot();
    let mut stack = Stack::start(StackOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let a = stack.gateway_url.clone();
    let t1 = stack.token(DEMO_CLIENT, None).unwrap();
    let t2 = stack.token(DEMO_CLIENT, None).unwrap();
    let t3 = stack.token(DEMO_CLIENT, None).unwrap();

    // Resource server down: the IDP revoked the token, but the logout is not a success.
    stack.resource_server.stop();
    let res = logout(&a, Some(&t1));
    assert_eq!(res.status, 502, "{}", res.body);
    assert_eq!(failed_steps(&res), ["resource_server_session_revocation"]);
    assert_eq!(
        hello(&a, &t1).status,
        401,
        "the IDP confirmed the revocation, so the gateway refuses it"
    );

    // IDP down as well: both steps named, and the token was not revoked.
    stack.idp.proc.stop();
    let res = logout(&a, Some(&t2));
    assert_eq!(res.status, 502, "{}", res.body);
    assert_eq!(
        failed_steps(&res),
        ["idp_revocation", "resource_server_session_revocation"]
    );

    // A slow IDP (accepts, never answers): the revocation step times out (3 s) -> 504 when both
    // steps timed out, 502 when one failed otherwise. Here the resource server is down: 502, with
    // the IDP step reported as timed out.
    let _hang = TcpListener::bind(("127.0.0.1", stack.idp_port)).unwrap();
    let started = Instant::now();
    let res = logout(&a, Some(&t3));
    assert!(
        started.elapsed() >= Duration::from_millis(2_900),
        "answered before the timeout"
    );
    assert_eq!(res.status, 502, "{}", res.body);
    let body: Value = res.json().unwrap();
    assert_eq!(body["failed_steps"][0]["step"], "idp_revocation");
    assert_eq!(body["failed_steps"][0]["error"], "timed out", "{body}");
    assert_eq!(stack.counter("oauth2gw.logout_failed"), Some(3));
}
