//! Logout at the IDP itself (OpenID Connect RP-initiated logout, not through the gateway): the
//! browser's session ends, and every gateway refuses its access tokens within the revocation
//! feed's poll interval, although they validate locally.

use e2e::client;
use e2e::stack::{ALICE, Gateway, Stack, StackOptions, WEB_CLIENT, WEB_CLIENT_REDIRECT};
use e2e::web_login::{CodeClient, authorise, exchange, sign_in, sign_out};
use std::time::{Duration, Instant};

fn hello(gateway: &str, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    client::get(&format!("{gateway}/api/hello"), &[("authorization", &auth)])
        .unwrap()
        .status
}

/// Waits (bounded) until every gateway refuses `token`; the time it took.
fn refused_everywhere(gateways: &[&str], token: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let statuses: Vec<u16> = gateways.iter().map(|g| hello(g, token)).collect();
        if statuses.iter().all(|s| *s == 401) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still {statuses:?} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The stack and a second Envoy in front of the same IDP and resource server.
fn two_gateways() -> (Stack, Gateway) {
    let stack = Stack::start(StackOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let b = stack
        .another_gateway("envoy-b")
        .unwrap_or_else(|e| panic!("{e}"));
    (stack, b)
}

fn web_client(scope: &str) -> CodeClient<'_> {
    CodeClient {
        id: WEB_CLIENT.0,
        secret: WEB_CLIENT.1,
        redirect_uri: WEB_CLIENT_REDIRECT,
        scope,
    }
}

#[test]
fn logout_at_the_idp_revokes_the_session_on_every_gateway() {
    let _slot = crate::slot();
    let (stack, b) = two_gateways();
    let client = web_client("openid read");
    let (tokens, mut jar) = sign_in(&stack.idp.url, &client, ALICE).unwrap();
    // a second sign-in in the same browser session (no password asked: SSO)
    let again: serde_json::Value = {
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", client.id),
            ("redirect_uri", client.redirect_uri),
            ("scope", "read"),
        ])
        .unwrap();
        let res = e2e::web_login::get(
            &mut jar,
            &format!("{}/oauth2/authorise?{query}", stack.idp.url),
        )
        .unwrap();
        assert_eq!(
            res.status, 303,
            "SSO: straight back with a code: {}",
            res.body
        );
        let code = url::Url::parse(res.header("location").unwrap())
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let r = exchange(&stack.idp.url, &client, &code).unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        r.json().unwrap()
    };
    let first = tokens["access_token"].as_str().unwrap();
    let second = again["access_token"].as_str().unwrap();
    let gateways = [stack.gateway_url.as_str(), b.url.as_str()];
    for g in gateways {
        assert_eq!(hello(g, first), 200);
        assert_eq!(hello(g, second), 200);
    }

    let res = sign_out(
        &stack.idp.url,
        &mut jar,
        tokens["id_token"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("Signed out"));
    assert_eq!(jar.get("idp_session"), None, "the SSO cookie is cleared");

    // both sessions of the browser session end on both gateways, within the feed's poll
    // interval (500 ms in envoy/envoy.yaml) plus margin
    let took = refused_everywhere(&gateways, first, Duration::from_secs(5));
    refused_everywhere(&gateways, second, Duration::from_secs(1));
    eprintln!("refused on every gateway {took:?} after the IDP logout");
    let refreshed = client::post_form(
        &format!("{}/oauth2/token", stack.idp.url),
        &[],
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", client.id),
            ("client_secret", client.secret),
        ],
    )
    .unwrap();
    assert_eq!(refreshed.json().unwrap()["error"], "invalid_grant");
}

#[test]
fn a_replayed_authorization_code_revokes_its_tokens_on_every_gateway() {
    let _slot = crate::slot();
    let (stack, b) = two_gateways();
    let client = web_client("read");
    let (code, _) = authorise(&stack.idp.url, &client, ALICE).unwrap();
    let first = exchange(&stack.idp.url, &client, &code).unwrap();
    assert_eq!(first.status, 200, "{}", first.body);
    let token = first.json().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let gateways = [stack.gateway_url.as_str(), b.url.as_str()];
    for g in gateways {
        assert_eq!(hello(g, &token), 200);
    }
    // the code is stolen and replayed: refused, and what it gave is revoked everywhere
    let replay = exchange(&stack.idp.url, &client, &code).unwrap();
    assert_eq!(replay.status, 400);
    assert_eq!(replay.json().unwrap()["error"], "invalid_grant");
    let took = refused_everywhere(&gateways, &token, Duration::from_secs(5));
    eprintln!("refused on every gateway {took:?} after the code replay");
}

#[test]
fn refresh_token_reuse_revokes_the_session_on_every_gateway() {
    let _slot = crate::slot();
    let (stack, b) = two_gateways();
    let login = e2e::stack::password_login(&stack.idp.url).unwrap();
    let stolen = login["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = e2e::stack::refresh(&stack.idp.url, &stolen).unwrap();
    assert_eq!(status, 200, "{rotated}");
    let token = rotated["access_token"].as_str().unwrap().to_owned();
    let gateways = [stack.gateway_url.as_str(), b.url.as_str()];
    for g in gateways {
        assert_eq!(hello(g, &token), 200);
    }
    // the rotated-away token is presented again (stolen): the whole session ends
    let (status, body) = e2e::stack::refresh(&stack.idp.url, &stolen).unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let took = refused_everywhere(&gateways, &token, Duration::from_secs(5));
    eprintln!("refused on every gateway {took:?} after the refresh-token reuse");
    let (status, _) =
        e2e::stack::refresh(&stack.idp.url, rotated["refresh_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        status, 400,
        "the current refresh token died with its session"
    );
}
