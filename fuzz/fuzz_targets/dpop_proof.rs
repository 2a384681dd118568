//! A DPoP proof (RFC 9449 §4.3) for the fixed DPoP-bound token, on a GET of
//! `https://api.example.com/api/x` at the fixed time, through the gateway's proof checker
//! (`filter::validation::dpop::check`). Beyond no panic:
//! - the pure-Rust and native (AWS-LC) signature paths decide alike;
//! - a proof the gateway accepts is accepted by the reference (jsonwebtoken, RFC 7638
//!   thumbprint and the §4.3 checks written again here);
//! - an accepted proof is refused the second time (replay);
//! - the payload reader of the proof path (`ProofClaims`) accepts exactly the payloads the strict
//!   JSON reader of tokens accepts, and reads the same `htm`, `htu`, `iat`, `ath` and `jti`.
#![no_main]

use filter::validation::claims::{numeric_date, optional_string};
use filter::http::denial::Scheme;
use filter::validation::dpop::proof_claims::{Member, ProofClaims};
use filter::validation::dpop::proof_keys::ProofKeyCache;
use filter::validation::dpop::{Presented, ProofContext, check};
use filter::jose::jws;
use filter::shared_state::MemoryShared;
use filter::jose::strict_json::parse_object;
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
    same_claims_as_the_strict_reader(proof);
    let proofs = [proof];
    let replay = MemoryShared::default();
    let proof_keys = ProofKeyCache::default();
    let context = ProofContext {
        method: "GET",
        uri: Some(HTU),
        proofs: &proofs,
        now: NOW,
        replay: &replay,
        replay_capacity: g.config.dpop_replay_cache_entries,
        native: None,
        proof_keys: &proof_keys,
    };
    let pure = check(settings, presented, &context);
    let other_replay = MemoryShared::default();
    let other_keys = ProofKeyCache::default();
    let native = check(
        settings,
        presented,
        &ProofContext {
            native: Some(&g.native),
            replay: &other_replay,
            proof_keys: &other_keys,
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

/// `ProofClaims::parse` against `strict_json::parse_object` on the proof's payload segment.
fn same_claims_as_the_strict_reader(proof: &str) -> Option<()> {
    let segments = jws::split(proof.trim_matches([' ', '\t'])).ok()?;
    let payload = jws::decode_segment(segments.payload).ok()?;
    let object = parse_object(&payload);
    let claims = ProofClaims::parse(&payload);
    let (Ok(object), Ok(claims)) = (&object, &claims) else {
        assert_eq!(
            object.is_ok(),
            claims.is_ok(),
            "the two readers disagree on {payload:?}"
        );
        return None;
    };
    for (name, member) in [
        ("htm", &claims.htm),
        ("htu", &claims.htu),
        ("ath", &claims.ath),
        ("jti", &claims.jti),
    ] {
        let text = member.as_ref().and_then(Member::text);
        assert_eq!(text, optional_string(object, name).ok().flatten(), "{name}");
    }
    let date = claims.iat.as_ref().and_then(Member::date);
    assert_eq!(date, numeric_date(object, "iat").ok().flatten(), "iat");
    Some(())
}
