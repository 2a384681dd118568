//! A fresh Envoy refuses tokens revoked before it started: its denylist is rebuilt from the
//! revocation feed, not only from what follows. The load starts the moment Envoy is live, before
//! it has keys (503, the documented answer without keys), and goes on through its first JWKS
//! fetch and feed poll; between the two answers tokens are refused with 503 too (until the feed
//! was read up to date: `revocation_feed.require_initial_sync`), never accepted.

use super::{FaultStack, RECOVERY_LIMIT, hello, revoke_at_idp};
use e2e::load::{self, FaultReport, Load};
use e2e::stack::Gateway;
use std::time::{Duration, Instant};

/// Fresh Envoys started one after the other (each a new chance for the first answers to race
/// the first feed poll).
const ROUNDS: usize = 2;

#[test]
fn a_fresh_envoy_refuses_tokens_revoked_before_it_started() {
    let _slot = crate::slot();
    let s = FaultStack::start();
    let mut tokens = s.tokens(4);
    // and revoked just now, at the IDP itself
    for _ in 0..3 {
        let token = s.token();
        assert!(revoke_at_idp(&s.idp.url, &token));
        tokens.revoked.push(token);
    }
    let valid = tokens.valid[0].clone();
    for round in 0..ROUNDS {
        let fresh = Gateway::start_without_keys(
            s.dir.path(),
            &format!("envoy-fresh-{round}"),
            s.idp_port,
            s.rs_port,
            &s.issuer,
        )
        .unwrap();
        let live = Instant::now();
        let load = Load::start(&fresh.url, "/api/hello", tokens.clone(), 3);
        load::time_until(
            RECOVERY_LIMIT,
            "the fresh Envoy accepts a valid token",
            || hello(&fresh.url, &valid) == Some(200),
        )
        .unwrap();
        let ready_after = live.elapsed();
        std::thread::sleep(Duration::from_millis(1_000));
        let (tally, ran_for) = load.finish();
        let report = FaultReport {
            fault: format!("fresh Envoy (round {round}), tokens revoked before it started"),
            tally,
            ran_for,
            during: Default::default(),
            recovery: vec![("Envoy live -> first valid 200".to_owned(), ready_after)],
        };
        report.check(&[
            "503 no keys (filter)",
            "503 revocations not loaded (filter)",
        ]);
    }
}
