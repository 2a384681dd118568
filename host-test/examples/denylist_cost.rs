//! The denylist's cost inside the filter, in harness fuel (≈ Wasm instructions, deterministic):
//! a cached-token request with the revocation feed configured, at several list sizes; what the
//! polling VM spends to apply a feed page of 1 000 entries; what every other VM spends to pick
//! it up. Two workers; the list is loaded through the feed in pages of 100 000.
//!
//! `FILTER_WASM=... cargo run --release -p host-test --example denylist_cost [SIZES...]`
//! (default sizes: 0 1000 100000 1000000)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use host_test::{Envoy, EnvoyOptions, Host, Limits, Request, Response};
use serde_json::json;
use signature::Signer;
use std::time::Duration;

const ISSUER: &str = "http://127.0.0.1:9000";
const FEED: &str = "/oauth2/revocations";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn page(cursor: u64, from: u64, count: u64, exp: u64) -> String {
    let mut body = format!(r#"{{"cursor":{cursor},"revoked":["#);
    for i in from..from + count {
        if i > from {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"jti":"{i:08x}-1b6a-4c1e-9c1f-5f0d2d3c4b5a","exp":{exp}}}"#
        ));
    }
    body.push_str("]}");
    body
}

/// Advances to the next poll and answers it with `body`; returns (fuel of the VM that polled
/// during the answer, fuel of each other VM over the next 200 ms, i.e. its sync on a tick).
fn poll(envoy: &mut Envoy, body: &str) -> (u64, Vec<u64>) {
    let mut call = None;
    for _ in 0..40 {
        envoy.advance(Duration::from_millis(100)).unwrap();
        call = envoy
            .pending_http_calls()
            .into_iter()
            .find(|c| c.path().unwrap_or("").starts_with(FEED));
        if call.is_some() {
            break;
        }
    }
    let call = call.expect("the feed is polled");
    let before: Vec<u64> = envoy.vms().iter().map(|vm| vm.fuel().total).collect();
    envoy
        .respond(call.id, Response::json(200, body.to_owned()))
        .unwrap();
    let mid: Vec<u64> = envoy.vms().iter().map(|vm| vm.fuel().total).collect();
    envoy.advance(Duration::from_millis(200)).unwrap();
    let after: Vec<u64> = envoy.vms().iter().map(|vm| vm.fuel().total).collect();
    let others = (0..after.len())
        .filter(|&vm| vm != call.id.vm)
        .map(|vm| after[vm] - mid[vm])
        .collect();
    (mid[call.id.vm] - before[call.id.vm], others)
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![0, 1_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    let host = Host::filter().unwrap_or_else(|e| panic!("{e}"));
    let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let point = key.verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "k1",
                                "x": b64(&bytes[1..33]), "y": b64(&bytes[33..65])}]});
    let config = json!({"providers": [{"name": "idp", "issuer": ISSUER, "audiences": ["demo-api"],
        "algorithms": ["ES256"], "jwks": {"cluster": "idp", "path": "/.well-known/jwks.json"}}],
        "idp_client": {"client_id": "gateway", "client_secret": "gateway-secret-0123456789"},
        "revocation_feed": {"cluster": "idp", "path": FEED, "poll_ms": 1000}});
    let token = |now: u64| {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"});
        let claims = json!({"iss": ISSUER, "sub": "alice", "aud": "demo-api", "iat": now,
                            "exp": now + 3600, "jti": "a-jti-not-revoked", "sid": "sid-1",
                            "scope": "read"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    };

    println!(
        "| live entries | fuel, cached request | fuel, poller applies a 1 000-entry page | fuel, another VM's sync after it |"
    );
    println!("|---|---|---|---|");
    for size in sizes {
        let limits = Limits {
            max_shared_data_bytes: 256 << 20,
            ..Limits::default()
        };
        let options = EnvoyOptions::new()
            .workers(2)
            .clusters(["idp"])
            .limits(limits)
            .plugin_config(config.to_string());
        let mut envoy = host.envoy(options).unwrap();
        envoy.advance(Duration::from_secs(1)).unwrap();
        envoy
            .respond_all("idp", &Response::json(200, jwks.to_string()))
            .unwrap();
        let now = envoy.clock().unix_seconds();
        let exp = now + 7_200;
        let mut cursor = 1;
        let mut loaded = 0;
        while loaded < size {
            let n = (size - loaded).min(100_000);
            poll(&mut envoy, &page(cursor, loaded, n, exp));
            loaded += n;
            cursor += 1;
        }
        let (poller, others) = poll(&mut envoy, &page(cursor, 1 << 40, 1_000, exp));
        let t = token(now);
        let mut fuel = Vec::new();
        for _ in 0..20 {
            let vm = envoy.worker(0);
            let id = vm.send(Request::get("/api").bearer(&t)).unwrap();
            assert!(vm.outcome(id).is_continued(), "{:?}", vm.outcome(id));
            fuel.push(vm.stream_fuel(id).unwrap());
        }
        fuel.sort_unstable();
        println!(
            "| {size} | {} | {poller} | {} |",
            fuel[fuel.len() / 2],
            others
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
}
