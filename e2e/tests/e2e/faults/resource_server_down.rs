//! The resource server goes down under load: logout answers 502 naming its step, never success
//! (`logout::logout_names_the_step_that_failed` checks each step failing without load). The IDP
//! did revoke those tokens, so the gateway refuses them at once.

use super::{FaultStack, RECOVERY_LIMIT, hello, logouts_fail_during};
use e2e::load::{self, Class, FaultReport, Load};
use std::time::{Duration, Instant};

#[test]
fn resource_server_down_under_load_logout_fails_naming_it() {
    let _slot = crate::slot();
    let mut s = FaultStack::start();
    let tokens = s.tokens(4);
    let valid = tokens.valid[0].clone();
    let mut logout_tokens: Vec<String> = (0..30).map(|_| s.token()).collect();
    let load = Load::start(&s.gateway.url, "/api/hello", tokens, 3);
    std::thread::sleep(Duration::from_millis(500));

    s.resource_server.stop(); // SIGKILL
    let logouts = logouts_fail_during(
        &s.gateway.url,
        &mut logout_tokens,
        Duration::from_secs(3),
        "resource_server_session_revocation",
    );
    for steps in logouts.answers.keys() {
        assert_eq!(steps, "502 [resource_server_session_revocation]");
    }
    // the IDP confirmed each revocation: those tokens are refused from now on
    for token in &logouts.tokens {
        assert_eq!(hello(&s.gateway.url, token), Some(401));
        load.add(Class::Revoked, token.clone());
    }

    s.restart_resource_server();
    let fault_end = Instant::now();
    let mut recovery = Vec::new();
    load::time_until(RECOVERY_LIMIT, "a valid token served again", || {
        hello(&s.gateway.url, &valid) == Some(200)
    })
    .unwrap();
    recovery.push(("valid token 200".to_owned(), fault_end.elapsed()));
    let token = logout_tokens.pop().unwrap();
    load::time_until(RECOVERY_LIMIT, "a logout succeeds again", || {
        load::logout(&s.gateway.url, &token).is_ok_and(|a| a.status == 200)
    })
    .unwrap();
    recovery.push(("logout 200".to_owned(), fault_end.elapsed()));
    std::thread::sleep(Duration::from_millis(500));

    let (tally, ran_for) = load.finish();
    let report = FaultReport {
        fault: "resource server down (SIGKILL), restarted on its port".to_owned(),
        tally,
        ran_for,
        during: logouts.answers,
        recovery,
    };
    // valid tokens pass the filter and meet Envoy's 503 for the missing upstream; nothing else
    report.check(&["503 upstream unreachable", "503 no healthy upstream"]);
}
