//! What the core does for a DPoP request against a cold bearer request, natively and without the
//! host: 2000 gateway decisions (`gateway::decide`) of one kind, EdDSA, for an instruction profile.
//!
//! - `cold`: a new bearer token every request (parsed, verified, cached);
//! - `dpop`: one DPoP-bound token (verified once, then from the cache) with a new proof every
//!   request (the proof parsed and verified, `htu`, `ath`, the replay cache in memory).
//!
//! ```text
//! cargo build --release -p filter --example dpop_profile   # with CARGO_PROFILE_RELEASE_DEBUG=1
//! valgrind --tool=callgrind target/release/examples/dpop_profile dpop
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | grep filter::
//! ```
//!
//! Instructions per `decide` less `signature::verify` (the same Ed25519 verification in both) is
//! the work DPoP adds or saves (BENCHMARKS.md, issue 18).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Issuer, KeySetOf, NOW, claims, config_with};
use filter::admission::gateway::{Knowledge, Outcome, RequestInfo, decide};
use filter::admission::token_cache::TokenCache;
use filter::shared_state::MemoryShared;
use filter::shared_state::denylist::Denylist;
use serde_json::json;
use test_support::proof_claims;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    assert!(
        mode == "cold" || mode == "dpop",
        "usage: dpop_profile cold|dpop"
    );
    let n = 2000;
    let config = config_with(json!({"providers": [{"algorithms": ["EdDSA"], "dpop": "allowed"}]}));
    let idp = Issuer::eddsa(9, "ed-1");
    let keys = idp.key_set();
    let client = Issuer::eddsa(22, "client");
    let denylist = Denylist::default();
    let shared = MemoryShared::default();
    filter::validation::dpop::replay::prepare(&shared);
    let mut cache = TokenCache::new(4096);
    let mut bound = claims();
    bound["cnf"] = json!({"jkt": client.thumbprint()});
    let token = idp.token(&bound);
    let auth = format!("DPoP {token}");
    let requests: Vec<(String, Option<String>)> = (0..n)
        .map(|i| {
            if mode == "dpop" {
                let proof = client.proof(&proof_claims(
                    "GET",
                    "https://api.example.com/api/x",
                    NOW,
                    &format!("p-{i}"),
                    &token,
                ));
                (auth.clone(), Some(proof))
            } else {
                let mut c = claims();
                c["jti"] = json!(format!("t-{i}"));
                (format!("Bearer {}", idp.token(&c)), None)
            }
        })
        .collect();
    for (authorization, proof) in &requests {
        let mut all = vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "api.example.com"),
            (":path", "/api/x"),
            ("authorization", authorization.as_str()),
        ];
        if let Some(p) = proof {
            all.push(("dpop", p.as_str()));
        }
        let k = Knowledge {
            keys: &[&keys],
            denylist: &denylist,
            now: NOW,
            revocations_loaded: true,
            native: None,
            replay: &shared,
        };
        let request = RequestInfo {
            method: "GET",
            path: "/api/x",
            headers: &all,
        };
        let outcome = decide(&config, k, request, &mut cache);
        assert!(matches!(outcome, Outcome::Forward { .. }), "{outcome:?}");
    }
}
