//! 8. Logout through the gateway with an opaque token: refused at once, not after
//!    `cache_seconds`.
//! 9. The OP's back-channel logout ends a session of opaque tokens.

use super::{ProviderShape, Setup, assert_invalid_token, introspection};
use e2e::client;
use e2e::oidc_provider::{GATEWAY_SECRET, OpOptions, RESOURCE_OPAQUE};
use e2e::third_party::Build;
use serde_json::json;
use std::time::{Duration, Instant};

/// The demo resource server's default secret for the gateway's session revocation.
const RS_SECRET: &str = "demo-gateway-to-rs-secret-0123456789";

/// A user's opaque token (cached by the gateway) and a sibling of the same session: the
/// gateway's logout revokes the token at the OP (which can revoke opaque tokens) and cuts the
/// session off on this Envoy, so both are refused on the next request, although their answers
/// are cached for 30 s. (Before d0cf543 the logout was refused with 401 `invalid token` on both
/// modules: `gateway::logout_subject` validated the token as a JWT only.)
fn logout_with_an_opaque_token(kind: Build, used_before: bool) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| {
        let authority = format!("127.0.0.1:{}", op.port());
        ProviderShape {
            audiences: vec![RESOURCE_OPAQUE],
            introspection: introspection(op.port(), json!({"cache_seconds": 30})),
            jwks: false,
            dpop: None,
            extra: json!({
                "provider": {
                    "max_token_lifetime_seconds": 600,
                    "revoke": {
                        "cluster": "op", "path": "/token/revocation", "authority": authority,
                        "timeout_ms": 3000, "client_id": "gateway", "client_secret": GATEWAY_SECRET
                    }
                },
                "filter": {
                    "logout": {
                        "path": "/oauth2/logout",
                        "resource_server": {
                            "cluster": "resource_server", "path": "/internal/sessions/revoke",
                            "secret_header": "x-gateway-secret", "secret": RS_SECRET,
                            "timeout_ms": 3000
                        }
                    }
                }
            }),
        }
    });
    let user = s
        .op()
        .login("erin", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    let refreshed = s
        .op()
        .refresh(&user.refresh_token)
        .unwrap_or_else(|e| panic!("{e}"));
    let sibling = refreshed["access_token"].as_str().unwrap().to_owned();
    assert!(!sibling.contains('.'), "{sibling}");
    let before: &[&String] = if used_before {
        &[&user.access_token, &sibling]
    } else {
        &[&sibling]
    };
    for token in before {
        let res = s.hello(token);
        assert_eq!(res.status, 200, "[{kind:?}] before logout: {}", res.body);
        assert_eq!(res.json().unwrap()["sid"], user.sid.as_str());
    }
    let (_, revocations_before) = s.op().counters().unwrap();

    let auth = format!("Bearer {}", user.access_token);
    let logout = || {
        client::post_form(
            &format!("{}/oauth2/logout", s.url),
            &[("authorization", auth.as_str())],
            &[],
        )
        .unwrap()
    };
    let mut res = logout();
    println!(
        "[{kind:?}] logout with an opaque token: {} {}",
        res.status, res.body
    );
    let mut statuses = vec![res.status];
    // a 503 says "try again shortly": do, after its Retry-After
    for _ in 0..2 {
        if res.status != 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1100));
        res = logout();
        statuses.push(res.status);
    }
    assert_eq!(
        res.status, 200,
        "[{kind:?}] logout (statuses {statuses:?}): {}",
        res.body
    );
    assert_eq!(res.json().unwrap()["status"], "logged_out", "{}", res.body);
    let (_, revocations_after) = s.op().counters().unwrap();
    assert_eq!(
        revocations_after,
        revocations_before + 1,
        "[{kind:?}] OP revocation"
    );
    // the OP says so too
    let answer = s.op().introspect(&user.access_token).unwrap();
    assert_eq!(answer["active"], false, "{answer}");

    // refused at once on this Envoy (both workers), although the answers are cached for 30 s
    for i in 0..6 {
        for (what, token) in [("the token", &user.access_token), ("its sibling", &sibling)] {
            let res = s.hello(token);
            assert_eq!(
                res.status, 401,
                "[{kind:?}] {what} after logout #{i}: {} {}",
                res.status, res.body
            );
            let challenge = res.header("www-authenticate").unwrap_or("");
            assert!(challenge.contains("invalid_token"), "{challenge}");
        }
    }
    // a new login of the same user is a new session
    let again = s
        .op()
        .login("erin", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    let res = s.hello(&again.access_token);
    assert_eq!(res.status, 200, "[{kind:?}] new session: {}", res.body);
}

#[test]
fn logout_with_an_opaque_token_wasm() {
    logout_with_an_opaque_token(Build::Wasm, true);
}

#[test]
fn logout_with_an_opaque_token_native() {
    logout_with_an_opaque_token(Build::Native, true);
}

/// The same logout with a token the gateway has not introspected yet (a user who logs out
/// without calling the API through this Envoy first, or after the answer's cache time): the
/// logout asks the OP about it first, then runs. Before (filter d0cf543) both modules answered
/// 503 and revoked nothing.
#[test]
fn logout_with_a_fresh_opaque_token_wasm() {
    logout_with_an_opaque_token(Build::Wasm, false);
}

#[test]
fn logout_with_a_fresh_opaque_token_native() {
    logout_with_an_opaque_token(Build::Native, false);
}

// ---------------------------------------------------------------------------------------------
// 9. The OP's back-channel logout ends a session of opaque tokens, cached or not

const BACKCHANNEL_PATH: &str = "/oauth2/backchannel-logout";

/// A user signs out at the OP (`end_session`): the OP posts a logout token to the gateway, whose
/// cut-off of that session (`sid`) refuses the session's opaque tokens at once, although their
/// introspection answers are cached for 30 s; another user's session and a new login pass.
fn backchannel_logout_ends_opaque_sessions(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start_with(
        kind,
        |listen| OpOptions {
            backchannel_logout_uri: Some(format!("http://127.0.0.1:{listen}{BACKCHANNEL_PATH}")),
            ..OpOptions::default()
        },
        |op| ProviderShape {
            audiences: vec![RESOURCE_OPAQUE],
            introspection: introspection(op.port(), json!({"cache_seconds": 30})),
            // the logout tokens are signed with the OP's keys
            jwks: true,
            dpop: None,
            extra: json!({
                "provider": {
                    "max_token_lifetime_seconds": 600,
                    "backchannel_logout_audiences": ["webapp"]
                },
                "filter": {
                    "backchannel_logout": {
                        "path": BACKCHANNEL_PATH,
                        "max_body_bytes": 8192,
                        "max_verifications_per_second": 20,
                        "max_token_age_seconds": 600
                    }
                }
            }),
        },
    );
    let user = s
        .op()
        .login("frank", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    let other = s
        .op()
        .login("gina", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    for token in [&user.access_token, &other.access_token] {
        assert!(!token.contains('.'), "{token}");
        let res = s.hello(token);
        assert_eq!(res.status, 200, "[{kind:?}] before: {}", res.body);
    }
    let introspections = s.introspections();

    s.op().end_session(&user).unwrap_or_else(|e| panic!("{e}"));
    let ended = Instant::now();
    loop {
        let res = s.hello(&user.access_token);
        if res.status == 401 {
            assert_invalid_token(&res, "after back-channel logout");
            break;
        }
        assert_eq!(res.status, 200, "[{kind:?}] {}", res.body);
        assert!(
            ended.elapsed() < Duration::from_secs(5),
            "[{kind:?}] the session's opaque token still accepted 5 s after end_session; OP log:\n{}\nEnvoy log:\n{}",
            s.op().log_text(),
            s.envoy.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "[{kind:?}] back-channel logout: the opaque token refused {:?} after end_session returned",
        ended.elapsed()
    );
    for i in 0..6 {
        assert_invalid_token(&s.hello(&user.access_token), &format!("again #{i}"));
    }
    assert_eq!(s.counter("backchannel_logout_ok"), 1);
    let res = s.hello(&other.access_token);
    assert_eq!(
        res.status, 200,
        "[{kind:?}] another user's session: {}",
        res.body
    );
    println!(
        "[{kind:?}] introspections during the refusals: {}",
        s.introspections() - introspections
    );
    let again = s
        .op()
        .login("frank", RESOURCE_OPAQUE)
        .unwrap_or_else(|e| panic!("{e}"));
    let res = s.hello(&again.access_token);
    assert_eq!(res.status, 200, "[{kind:?}] a new login: {}", res.body);
}

#[test]
fn backchannel_logout_ends_opaque_sessions_wasm() {
    backchannel_logout_ends_opaque_sessions(Build::Wasm);
}

#[test]
fn backchannel_logout_ends_opaque_sessions_native() {
    backchannel_logout_ends_opaque_sessions(Build::Native);
}
