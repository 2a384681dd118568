//! A DPoP proof (RFC 9449 §4.3) for the fixed DPoP-bound token, on a GET of
//! `https://api.example.com/api/x` at the fixed time, through the gateway's proof checker
//! (`filter::dpop::check`). Beyond no panic:
//! - the pure-Rust and native (AWS-LC) signature paths decide alike;
//! - a proof the gateway accepts is accepted by the reference (jsonwebtoken, RFC 7638
//!   thumbprint and the §4.3 checks written again here);
//! - an accepted proof is refused the second time (replay).
#![no_main]

use filter::denial::Scheme;
use filter::dpop::{Presented, ProofContext, check};
use filter::shared_state::MemoryShared;
use gateway_fuzz::fixtures::{HTU, NOW, gateway};
use gateway_fuzz::reference::verify_dpop_proof;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = std::str::from_utf8(data) else {
        return;
    };
    let g = gateway();
    let provider = &g.config.providers[0];
    let settings = &provider.dpop;
    let presented = Presented {
        scheme: Scheme::Dpop,
        token: &g.dpop_token,
        jkt: Some(&g.dpop_jkt),
        ath: None,
    };
    let proofs = [proof];
    let replay = MemoryShared::default();
    let context = ProofContext {
        method: "GET",
        uri: Some(HTU),
        proofs: &proofs,
        now: NOW,
        replay: &replay,
        replay_capacity: g.config.dpop_replay_cache_entries,
        native: None,
    };
    let pure = check(settings, presented, &context);
    let other_replay = MemoryShared::default();
    let native = check(
        settings,
        presented,
        &ProofContext {
            native: Some(&g.native),
            replay: &other_replay,
            ..context
        },
    );
    assert_eq!(pure, native, "pure-Rust and native verification disagree");
    if pure.is_ok() {
        if let Err(why) = verify_dpop_proof(
            proof.trim_matches([' ', '\t']),
            &g.dpop_token,
            &g.dpop_jkt,
            settings.max_age_seconds,
            settings.leeway_seconds,
        ) {
            panic!("accepted a proof the reference refuses: {why}");
        }
        assert!(
            check(settings, presented, &context).is_err(),
            "a proof was accepted twice"
        );
    }
});
