//! Why the native module verifies with `aws-lc-rs`: microseconds per signature verification of
//! ES256 (P-256, ASN.1 signature) and RS256 (RSA-2048) with
//! - `aws-lc-rs`, the key parsed once (`ParsedPublicKey`, what the module does),
//! - `aws-lc-rs`, the key parsed on every call (`UnparsedPublicKey`),
//! - `ring`, the key parsed on every call (`ring` 0.17 has no parsed public key type).
//!
//! `cargo run --release -p filter-native --features compare-ring --example verify_speed` (ROUNDS, N in the environment);
//! rounds interleave the variants so the machine's noise hits them alike; medians are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measuring tool

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as lc, KeyPair};
use std::time::Instant;

struct Case {
    name: &'static str,
    public: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
    lc_alg: &'static dyn lc::VerificationAlgorithm,
    ring_alg: &'static dyn ring::signature::VerificationAlgorithm,
}

fn cases() -> Vec<Case> {
    let rng = SystemRandom::new();
    let message = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9".to_vec();
    let pkcs8 =
        lc::EcdsaKeyPair::generate_pkcs8(&lc::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let ec =
        lc::EcdsaKeyPair::from_pkcs8(&lc::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let ec_sig = ec.sign(&rng, &message).unwrap();
    let rsa = lc::RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let mut rsa_sig = vec![0; rsa.public_modulus_len()];
    rsa.sign(&lc::RSA_PKCS1_SHA256, &rng, &message, &mut rsa_sig)
        .unwrap();
    vec![
        Case {
            name: "ES256 (P-256)",
            public: ec.public_key().as_ref().to_vec(),
            message: message.clone(),
            signature: ec_sig.as_ref().to_vec(),
            lc_alg: &lc::ECDSA_P256_SHA256_ASN1,
            ring_alg: &ring::signature::ECDSA_P256_SHA256_ASN1,
        },
        Case {
            name: "RS256 (RSA-2048)",
            public: rsa.public_key().as_ref().to_vec(),
            message,
            signature: rsa_sig,
            lc_alg: &lc::RSA_PKCS1_2048_8192_SHA256,
            ring_alg: &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        },
    ]
}

fn time(n: u32, mut f: impl FnMut() -> bool) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        assert!(f(), "a valid signature must verify");
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let env = |k: &str, d: u32| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (rounds, n) = (env("ROUNDS", 7), env("N", 2000));
    println!("µs per verification, median of {rounds} rounds of {n}");
    println!(
        "| signature | aws-lc-rs, key parsed once | aws-lc-rs, parsed per call | ring, parsed per call |"
    );
    println!("|---|---|---|---|");
    for c in cases() {
        let parsed = lc::ParsedPublicKey::new(c.lc_alg, &c.public).unwrap();
        let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            a.push(time(n, || {
                parsed.verify_sig(&c.message, &c.signature).is_ok()
            }));
            b.push(time(n, || {
                lc::UnparsedPublicKey::new(c.lc_alg, &c.public)
                    .verify(&c.message, &c.signature)
                    .is_ok()
            }));
            r.push(time(n, || {
                ring::signature::UnparsedPublicKey::new(c.ring_alg, &c.public)
                    .verify(&c.message, &c.signature)
                    .is_ok()
            }));
        }
        println!(
            "| {} | {:.1} | {:.1} | {:.1} |",
            c.name,
            median(a),
            median(b),
            median(r)
        );
    }
}
