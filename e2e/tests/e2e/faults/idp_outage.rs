//! What the IDP's outages (killed, hung) have in common: the run under load and what must hold
//! during and after it.

use super::{
    FAULT, FaultStack, RECOVERY_LIMIT, hello, logouts_fail_during, revoke_at_idp, start_idp,
};
use e2e::load::{self, Class, FaultReport, Load};
use e2e::process::free_port;
use std::time::{Duration, Instant};

/// Runs the load, calls `begin` (the IDP stops answering), checks the gateway through the
/// outage, calls `end` (the IDP answers again) and measures the recovery.
pub fn run(fault: &str, begin: impl FnOnce(&mut FaultStack), end: impl FnOnce(&mut FaultStack)) {
    let mut s = FaultStack::start();
    let tokens = s.tokens(4);
    // valid now, revoked at the IDP while the gateway cannot reach it
    let revoked_in_outage: Vec<String> = (0..3).map(|_| s.token()).collect();
    // valid, never shown to the gateway before the outage: verified with the cached keys
    let unseen: Vec<String> = (0..2).map(|_| s.token()).collect();
    let mut logout_tokens: Vec<String> = (0..30).map(|_| s.token()).collect();
    for token in &revoked_in_outage {
        assert_eq!(hello(&s.gateway.url, token), Some(200));
    }
    let (jwks_failed, feed_failed) = (
        s.gateway.counter("oauth2gw.jwks_fetch_failed").unwrap_or(0),
        s.gateway
            .counter("oauth2gw.revocation_poll_failed")
            .unwrap_or(0),
    );

    let load = Load::start(&s.gateway.url, "/api/hello", tokens, 3);
    std::thread::sleep(Duration::from_millis(500));
    begin(&mut s);

    // Revoked at the IDP (another process on the same database) while the gateway cannot
    // reach it: the gateway cannot know yet; it must refuse them once it can.
    {
        let port = free_port().unwrap();
        let offline = start_idp(s.dir.path(), "idp-offline", port, &s.issuer, &s.database());
        for token in &revoked_in_outage {
            assert!(revoke_at_idp(&offline.url, token), "offline revocation");
        }
    }
    for token in &unseen {
        assert_eq!(
            hello(&s.gateway.url, token),
            Some(200),
            "a valid token never seen before, during the outage"
        );
        load.add(Class::Valid, token.clone());
    }
    let logouts = logouts_fail_during(&s.gateway.url, &mut logout_tokens, FAULT, "idp_revocation");
    // the gateway did try the IDP during the outage (keys and feed), and failed
    let deadline = Instant::now() + RECOVERY_LIMIT;
    while s.gateway.counter("oauth2gw.jwks_fetch_failed").unwrap_or(0) <= jwks_failed
        || s.gateway
            .counter("oauth2gw.revocation_poll_failed")
            .unwrap_or(0)
            <= feed_failed
    {
        assert!(
            Instant::now() < deadline,
            "no failed fetch during the outage"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    end(&mut s);
    let fault_end = Instant::now();
    let mut recovery = Vec::new();
    let mut pending = revoked_in_outage.clone();
    load::time_until(
        RECOVERY_LIMIT,
        "tokens revoked in the outage refused",
        || {
            pending.retain(|t| hello(&s.gateway.url, t) != Some(401));
            pending.is_empty()
        },
    )
    .unwrap();
    recovery.push(("revoked-in-outage refused".to_owned(), fault_end.elapsed()));
    for token in revoked_in_outage {
        load.add(Class::Revoked, token);
    }
    // (a logout that fails may have revoked the token: a retried logout is answered 200 then)
    let token = logout_tokens.pop().unwrap();
    load::time_until(RECOVERY_LIMIT, "a logout succeeds again", || {
        load::logout(&s.gateway.url, &token).is_ok_and(|a| a.status == 200)
    })
    .unwrap();
    recovery.push(("logout 200".to_owned(), fault_end.elapsed()));
    std::thread::sleep(Duration::from_millis(500)); // the load goes on, all classes settled

    let (tally, ran_for) = load.finish();
    let report = FaultReport {
        fault: fault.to_owned(),
        tally,
        ran_for,
        during: logouts.answers,
        recovery,
    };
    // The gateway has its keys throughout: no 5xx at all, and nothing but the expected answers.
    report.check(&[]);
}
