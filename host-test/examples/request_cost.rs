//! The filter's cost per request in the harness: fuel (≈ wasm instructions, deterministic — the
//! number to watch when the filter changes) and median wall time, for a valid ES256 token seen
//! for the first time (cache miss: full verification) and seen again (cache hit), with Envoy's
//! native `verify_signature` and without it.
//!
//! `cargo run --release -p host-test --example request_cost`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use host_test::{EnvoyOptions, Host, Request, Response};
use serde_json::json;
use std::time::{Duration, Instant};
use test_support::Issuer;

const ISSUER: &str = "http://127.0.0.1:9000";

fn main() {
    let host = Host::filter().unwrap_or_else(|e| panic!("{e}"));
    let key = Issuer::es256(7, "k1");
    let jwks = key.jwks();
    let config = json!({"providers": [{"name": "idp", "issuer": ISSUER, "audiences": ["demo-api"],
        "algorithms": ["ES256"], "jwks": {"cluster": "idp", "path": "/.well-known/jwks.json"}}]});
    let token = |now: u64, jti: usize| {
        let claims = json!({"iss": ISSUER, "sub": "alice", "aud": "demo-api", "iat": now,
                            "exp": now + 3600, "jti": format!("jti-{jti}"), "scope": "read"});
        key.token(&claims)
    };

    println!("| case | fuel per request | median time |");
    println!("|---|---|---|");
    for native in [true, false] {
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
            .respond_all("idp", &Response::json(200, jwks.to_string()))
            .unwrap();
        let now = envoy.clock().unix_seconds();
        let n = 200;
        let tokens: Vec<String> = (0..n).map(|i| token(now, i)).collect();
        let mut measure = |label: &str, tokens: &[String]| {
            let mut fuel = Vec::new();
            let mut times = Vec::new();
            for t in tokens {
                let vm = envoy.worker(0);
                let started = Instant::now();
                let id = vm.send(Request::get("/api").bearer(t)).unwrap();
                times.push(started.elapsed());
                assert!(vm.outcome(id).is_continued());
                fuel.push(vm.stream_fuel(id).unwrap());
            }
            fuel.sort_unstable();
            times.sort_unstable();
            let verify = if native {
                "native verify_signature"
            } else {
                "in-Wasm verification"
            };
            println!(
                "| {label}, {verify} | {} | {:?} |",
                fuel[fuel.len() / 2],
                times[times.len() / 2]
            );
        };
        measure("new token (cache miss)", &tokens);
        measure("same token again (cache hit)", &tokens);
    }
}
