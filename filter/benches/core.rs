//! Micro-benchmarks of the filter's core, natively (`cargo bench -p filter --bench core`): parse +
//! verify a token (ES256, RS256, EdDSA; the same RustCrypto code the Wasm module runs when the
//! host has no native `verify_signature`), a verified-token cache hit, and a denylist lookup
//! with 100 000 entries. The cost inside the Wasm module is measured by host-test's
//! `request_cost` example (BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use common::{Issuer, KeySetOf, NOW, b64, claims, config_with};
use criterion::{Criterion, criterion_group, criterion_main};
use filter::admission::token_cache::TokenCache;
use filter::jose::jwk::KeySet;
use filter::shared_state::denylist::Denylist;
use filter::validation::validate;
use serde_json::json;
use std::hint::black_box;
use std::rc::Rc;

/// An RS256 token and its key set (2048-bit key made by aws-lc-rs).
fn rs256() -> (String, KeySet) {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
    let pair = RsaKeyPair::from_pkcs8(der.as_ref()).unwrap();
    let public = key.public_key();
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero())}]});
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let set = KeySet::parse(jwks.to_string().as_bytes()).unwrap().set;
    (format!("{input}.{}", b64(&sig)), set)
}

fn verification(c: &mut Criterion) {
    let config = config_with(json!({"providers": [{"algorithms": ["ES256", "RS256", "EdDSA"]}]}));
    let es = Issuer::es256(7, "es-1");
    let ed = Issuer::eddsa(9, "ed-1");
    let (rs_token, rs_keys) = rs256();
    let cases = [
        ("ES256", es.token(&claims()), es.key_set()),
        ("EdDSA", ed.token(&claims()), ed.key_set()),
        ("RS256", rs_token, rs_keys),
    ];
    let mut group = c.benchmark_group("parse + verify (native build of the in-Wasm code)");
    for (alg, token, keys) in &cases {
        validate(&config, &[keys], token, NOW).expect("a valid token");
        group.bench_function(*alg, |b| {
            b.iter(|| validate(&config, &[keys], black_box(token), NOW).unwrap())
        });
    }
    group.finish();

    let (_, token, keys) = &cases[0];
    let verified = Rc::new(validate(&config, &[keys], token, NOW).unwrap());
    let mut cache = TokenCache::new(10_000);
    cache.insert(cache.key_of(token), verified);
    c.bench_function("cache hit (digest of the token + lookup)", |b| {
        b.iter(|| {
            let key = cache.key_of(black_box(token));
            cache.get(&key, NOW, |_| 30).unwrap()
        })
    });
}

fn denylist(c: &mut Criterion) {
    let mut list = Denylist::default();
    for i in 0..50_000 {
        list.revoke_jti(&format!("jti-{i}"), NOW + 300);
        list.revoke_sid(&format!("sid-{i}"), NOW + 300);
    }
    assert_eq!(list.len(), 100_000);
    c.bench_function("denylist lookup, 100k entries, not revoked", |b| {
        b.iter(|| list.is_revoked(black_box(Some("jti-none")), black_box(Some("sid-none"))))
    });
    c.bench_function("denylist lookup, 100k entries, revoked", |b| {
        b.iter(|| list.is_revoked(black_box(Some("jti-49999")), black_box(None)))
    });
}

criterion_group!(benches, verification, denylist);
criterion_main!(benches);
