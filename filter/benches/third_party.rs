//! The third wave's paths, natively, side by side with what they join
//! (`cargo bench -p filter --bench third_party`):
//! - one request's decision for a token the worker has cached: a JWT against an introspected
//!   (opaque) token; and with the worker's cache off, a JWT verified again against an opaque
//!   token read from the shared introspection cache;
//! - the denylist look-up of a verified token at a million entries: `jti`s only, against half
//!   `jti`s and half session cut-offs (hit and miss).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{AUDIENCE, Issuer, KeySetOf, NOW};
use criterion::{Criterion, criterion_group, criterion_main};
use filter::admission::gateway::{Knowledge, Outcome, RequestInfo, decide};
use filter::admission::token_cache::TokenCache;
use filter::config::FilterConfig;
use filter::shared_state::MemoryShared;
use filter::shared_state::denylist::{CutoffKind, Denylist, IdKind, TokenIds};
use filter::shared_state::denylist_store::{Revocation, record};
use filter::validation::introspection::{AnswerContext, complete};
use serde_json::json;
use std::hint::black_box;

const OP: &str = "https://op.example";

fn config(cache: usize) -> FilterConfig {
    let op = Issuer::es256(8, "op-key");
    let raw = json!({
        "providers": [{
            "issuer": OP, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "inline_jwks": op.jwks(),
            "introspection": {"cluster": "op", "path": "/introspect", "client_id": "gateway",
                              "client_secret": "gateway-secret-0123456789", "cache_seconds": 3600}
        }],
        "cache_max_entries": cache
    });
    FilterConfig::from_json(raw.to_string().as_bytes()).unwrap()
}

fn decisions(c: &mut Criterion) {
    let op = Issuer::es256(8, "op-key");
    let keys = op.key_set();
    let jwt = op.token(&json!({
        "iss": OP, "aud": AUDIENCE, "sub": "alice", "client_id": "webapp", "scope": "api",
        "sid": "s-1", "jti": "j-1", "iat": NOW - 10, "exp": NOW + 600
    }));
    let opaque = "opaque-Zm9vYmFyYmF6cXV4";
    let shared = MemoryShared::default();
    let answer = json!({"active": true, "iss": OP, "aud": AUDIENCE, "sub": "alice",
        "client_id": "webapp", "scope": "api", "sid": "s-1", "jti": "o-1", "iat": NOW - 10,
        "exp": NOW + 600});
    let cx = AnswerContext {
        keys: &keys,
        now: NOW,
        native: None,
        shared: &shared,
    };
    complete(
        &config(16),
        cx,
        0,
        opaque,
        Some(200),
        answer.to_string().as_bytes(),
    )
    .unwrap();
    let denylist = Denylist::default();
    let mut group = c.benchmark_group("decision");
    for (cache, label) in [(16, "worker cache hit"), (0, "worker cache off")] {
        let config = config(cache);
        for (kind, token) in [("JWT", jwt.as_str()), ("introspected", opaque)] {
            let auth = format!("Bearer {token}");
            let headers = [("authorization", auth.as_str())];
            let mut tokens = TokenCache::new(cache);
            let run = |tokens: &mut TokenCache| {
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
                    path: "/api",
                    headers: black_box(&headers),
                };
                decide(&config, k, request, tokens)
            };
            assert!(matches!(run(&mut tokens), Outcome::Forward { .. }));
            group.bench_function(format!("{kind}, {label}"), |b| b.iter(|| run(&mut tokens)));
        }
    }
    group.finish();
}

fn cutoffs(c: &mut Criterion) {
    let mut group = c.benchmark_group("denylist look-up, 1M entries");
    for (label, cutoff_share) in [("jti only", 0), ("half session cut-offs", 2)] {
        let shared = MemoryShared::default();
        let entries: Vec<Revocation> = (0..1_000_000u64)
            .map(|i| {
                if cutoff_share != 0 && i % cutoff_share == 0 {
                    Revocation::cutoff(CutoffKind::Session, OP, &format!("s{i}"), NOW, NOW + 3_600)
                } else {
                    Revocation::new(IdKind::Jti, &format!("j{i}"), NOW + 3_600)
                }
            })
            .collect();
        for chunk in entries.chunks(100_000) {
            record(&shared, chunk, NOW).unwrap();
        }
        let mut list = Denylist::default();
        list.sync(&shared);
        assert_eq!(list.len(), 1_000_000);
        let miss = TokenIds::of(OP, Some("j-none"), Some("s-none"), Some("u"), Some(NOW));
        let hit = if cutoff_share == 0 {
            TokenIds::of(OP, Some("j999999"), None, Some("u"), Some(NOW))
        } else {
            TokenIds::of(OP, Some("j-none"), Some("s999998"), Some("u"), Some(NOW))
        };
        assert!(list.refuses(&hit) && !list.refuses(&miss));
        group.bench_function(format!("{label}, not listed"), |b| {
            b.iter(|| list.refuses(black_box(&miss)))
        });
        group.bench_function(format!("{label}, listed"), |b| {
            b.iter(|| list.refuses(black_box(&hit)))
        });
    }
    group.finish();
}

criterion_group!(benches, decisions, cutoffs);
criterion_main!(benches);
