//! 2. Logout through the gateway with a user's JWT access token: the OP cannot revoke it
//!    (`unsupported_token_type`), the gateway's cut-off of the session is the revocation.
//! 3. The OP's Back-Channel Logout (`end_session`) posted to the gateway ends that session's
//!    tokens on that Envoy; a new login works.

use super::{BACKCHANNEL_PATH, Setup, assert_revoked};
use e2e::client;
use e2e::oidc_provider::{OpOptions, decode_jwt};
use e2e::third_party::Build;
use std::time::{Duration, Instant};

fn logout_is_a_gateway_cutoff(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind);
    let tokens = s.login("alice");
    let (_, claims) = decode_jwt(&tokens.access_token).unwrap();
    assert_eq!(claims["sid"], tokens.sid.as_str(), "{claims}");
    // a second access token of the same session (refresh): the cut-off must refuse it too
    let refreshed = s.op.refresh(&tokens.refresh_token).unwrap();
    let sibling = refreshed["access_token"].as_str().unwrap().to_owned();
    let (_, sibling_claims) = decode_jwt(&sibling).unwrap();
    assert_eq!(
        sibling_claims["sid"],
        tokens.sid.as_str(),
        "{sibling_claims}"
    );
    assert_ne!(sibling_claims["jti"], claims["jti"]);
    assert_eq!(s.hello(Some(&tokens.access_token)).status, 200);
    assert_eq!(s.hello(Some(&sibling)).status, 200);
    let (_, revocations_before) = s.op.counters().unwrap();

    let auth = format!("Bearer {}", tokens.access_token);
    let res = client::post_form(
        &format!("{}/oauth2/logout", s.url),
        &[("authorization", &auth)],
        &[],
    )
    .unwrap();
    assert_eq!(res.status, 200, "logout: {}", res.body);
    let body = res.json().unwrap();
    assert_eq!(body["status"], "logged_out", "{body}");
    assert_eq!(body["revocation"], "gateway_cutoff", "{body}");
    assert_eq!(s.counter("logout_ok"), 1);
    // the gateway did call the OP's revocation endpoint (which refused: unsupported_token_type)
    let (_, revocations_after) = s.op.counters().unwrap();
    assert_eq!(
        revocations_after,
        revocations_before + 1,
        "OP revocation calls"
    );

    // refused at once by the gateway (not only by the resource server, which ended the session)
    let denied_before = s.counter("denied.revoked");
    assert_revoked(&s.hello(Some(&tokens.access_token)), "the logged-out token");
    assert_revoked(&s.hello(Some(&sibling)), "another token of that session");
    // on every worker (each request a new connection, spread over Envoy's 2 workers)
    for i in 0..8 {
        assert_revoked(&s.hello(Some(&sibling)), &format!("again #{i}"));
    }
    assert_eq!(s.counter("denied.revoked"), denied_before + 10);

    // a new login of the same user is a new session: accepted
    let again = s.login("alice");
    assert_ne!(again.sid, tokens.sid, "the OP reused the session id");
    let res = s.hello(Some(&again.access_token));
    assert_eq!(res.status, 200, "new session: {}", res.body);
    // and the OP's own session of the first login still exists: the gateway's logout does not
    // end it (that is what end_session is for), but its old tokens stay refused here
    assert_revoked(&s.hello(Some(&tokens.access_token)), "still refused");
}

#[test]
fn logout_is_a_gateway_cutoff_wasm() {
    logout_is_a_gateway_cutoff(Build::Wasm);
}

#[test]
fn logout_is_a_gateway_cutoff_native() {
    logout_is_a_gateway_cutoff(Build::Native);
}

// ---------------------------------------------------------------------------------------------
// 3. Back-channel logout from the OP

fn backchannel_logout_from_the_op(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start_with(kind, |listen| OpOptions {
        backchannel_logout_uri: Some(format!("http://127.0.0.1:{listen}{BACKCHANNEL_PATH}")),
        ..OpOptions::default()
    });
    let tokens = s.login("bob");
    let other_user = s.login("carol");
    assert_eq!(s.hello(Some(&tokens.access_token)).status, 200);
    assert_eq!(s.hello(Some(&other_user.access_token)).status, 200);
    assert_eq!(s.counter("backchannel_logout_ok"), 0);

    s.op.end_session(&tokens).unwrap_or_else(|e| panic!("{e}"));
    let ended = Instant::now();
    loop {
        let res = s.hello(Some(&tokens.access_token));
        if res.status == 401 {
            assert_revoked(&res, "after back-channel logout");
            break;
        }
        assert_eq!(res.status, 200, "{}", res.body);
        assert!(
            ended.elapsed() < Duration::from_secs(5),
            "[{kind:?}] the session's token is still accepted 5 s after end_session; OP log:\n{}\nEnvoy log:\n{}",
            s.op.log_text(),
            s.envoy.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "[{kind:?}] back-channel logout: token refused {:?} after end_session returned",
        ended.elapsed()
    );
    // on every worker (each request a new connection, spread over Envoy's 2 workers)
    for i in 0..8 {
        assert_revoked(&s.hello(Some(&tokens.access_token)), &format!("again #{i}"));
    }
    assert_eq!(s.counter("backchannel_logout_ok"), 1);
    assert_eq!(s.counter("backchannel_logout_refused"), 0);
    let log = s.op.log_text();
    assert!(
        log.contains(&format!(
            "OP_BACKCHANNEL ok client=webapp sub=bob sid={}",
            tokens.sid
        )),
        "{log}"
    );
    // another user's session is untouched; a new login of the same user is accepted
    assert_eq!(s.hello(Some(&other_user.access_token)).status, 200);
    let again = s.login("bob");
    assert_ne!(again.sid, tokens.sid);
    let res = s.hello(Some(&again.access_token));
    assert_eq!(
        res.status, 200,
        "new login after back-channel logout: {}",
        res.body
    );
}

#[test]
fn backchannel_logout_from_the_op_wasm() {
    backchannel_logout_from_the_op(Build::Wasm);
}

#[test]
fn backchannel_logout_from_the_op_native() {
    backchannel_logout_from_the_op(Build::Native);
}
