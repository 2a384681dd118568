//! What a DPoP request costs the filter in the harness, next to a cold bearer request of the same
//! algorithm: fuel (≈ wasm instructions, deterministic) and median wall time per request.
//!
//! - cold bearer: a new token every request (full verification);
//! - DPoP: one DPoP-bound token (cached after its first request) with a new proof every request
//!   (the proof is always verified: `jwk` parsed, signature, thumbprint, `ath`, replay cache).
//!
//! ES256 through Envoy's `verify_signature` (the harness provides it) and inside Wasm; EdDSA is
//! always verified inside Wasm (`verify_signature` has no Ed25519 here).
//!
//! `FILTER_WASM=target/wasm32-wasip1/wasm-release/filter.opt.wasm cargo run --release -p host-test --example dpop_cost`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use host_test::{Envoy, EnvoyOptions, Host, Request, Response};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use test_support::{Issuer, jwks, proof_claims};

const ISSUER: &str = "http://127.0.0.1:9000";
const N: usize = 200;

fn claims(now: u64, jti: usize, jkt: Option<String>) -> Value {
    let mut c = json!({"iss": ISSUER, "sub": "alice", "aud": "demo-api", "iat": now,
                       "exp": now + 3600, "jti": format!("jti-{jti}"), "scope": "read"});
    if let Some(jkt) = jkt {
        c["cnf"] = json!({"jkt": jkt});
    }
    c
}

/// Median fuel and time of `requests` sent to worker 0.
fn measure(envoy: &mut Envoy, requests: Vec<Request>) -> (u64, Duration) {
    let mut fuel = Vec::new();
    let mut times = Vec::new();
    for request in requests {
        let vm = envoy.worker(0);
        let started = Instant::now();
        let id = vm.send(request).unwrap();
        times.push(started.elapsed());
        assert!(vm.outcome(id).is_continued(), "{:#?}", vm.outcome(id));
        fuel.push(vm.stream_fuel(id).unwrap());
    }
    fuel.sort_unstable();
    times.sort_unstable();
    (fuel[fuel.len() / 2], times[times.len() / 2])
}

fn main() {
    let host = Host::filter().unwrap_or_else(|e| panic!("{e}"));
    let (es_idp, ed_idp) = (Issuer::es256(7, "es"), Issuer::eddsa(8, "ed"));
    let document = jwks(&[&es_idp, &ed_idp]);
    let config = json!({"providers": [{"name": "idp", "issuer": ISSUER, "audiences": ["demo-api"],
        "algorithms": ["ES256", "EdDSA"], "jwks": {"cluster": "idp", "path": "/.well-known/jwks.json"},
        "dpop": "allowed"}]});

    println!("| case | verification | fuel per request | median time |");
    println!("|---|---|---|---|");
    for native in [true, false] {
        let verify = if native {
            "Envoy's verify_signature"
        } else {
            "inside Wasm"
        };
        for (alg, idp, client) in [
            ("ES256", &es_idp, Issuer::es256(21, "client")),
            ("EdDSA", &ed_idp, Issuer::eddsa(22, "client")),
        ] {
            let mut options = EnvoyOptions::new()
                .workers(1)
                .clusters(["idp"])
                .plugin_config(config.to_string());
            if !native {
                options = options.without_foreign_function("verify_signature");
            }
            let mut envoy = host.envoy(options).unwrap();
            envoy.advance(Duration::from_secs(1)).unwrap();
            envoy
                .respond_all("idp", &Response::json(200, document.to_string()))
                .unwrap();
            let now = envoy.clock().unix_seconds();
            let cold: Vec<Request> = (0..N)
                .map(|i| Request::get("/api").bearer(&idp.token(&claims(now, i, None))))
                .collect();
            let (fuel, time) = measure(&mut envoy, cold);
            println!("| cold bearer token, {alg} | {verify} | {fuel} | {time:?} |");
            let token = idp.token(&claims(now, N + 1, Some(client.thumbprint())));
            let dpop: Vec<Request> = (0..=N)
                .map(|i| {
                    let proof = client.proof(&proof_claims(
                        "GET",
                        "http://gateway.test/api",
                        now,
                        &format!("p-{i}"),
                        &token,
                    ));
                    Request::get("/api")
                        .header("authorization", format!("DPoP {token}"))
                        .header("dpop", proof)
                })
                .collect();
            // The first request also verifies the token; the others find it in the cache.
            let (fuel, time) = measure(&mut envoy, dpop);
            println!("| cached DPoP token, new {alg} proof | {verify} | {fuel} | {time:?} |");
        }
    }
}
