//! The JWS examples of RFC 7515 (A.3, ES256), RFC 7520 (4.1, RS256) and RFC 8037 (A.4, EdDSA),
//! kept in `tests/vectors/rfc_jws_examples.json`: each key goes through the filter's JWKS parser,
//! each signature through its verification; the signature must verify, and must not once the
//! signature, the signed header or payload, or the key is changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use filter::jose::algorithm::Algorithm;
use filter::jose::jwk::{Jwk, KeySet};
use filter::jose::jws;
use filter::jose::signature::verify_jwk;
use serde_json::{Value, json};

struct Example {
    name: String,
    alg: Algorithm,
    key: Jwk,
    compact: String,
    payload_is_json: bool,
}

fn examples() -> Vec<Example> {
    let text = include_str!("vectors/rfc_jws_examples.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let set = json!({ "keys": [e["jwk"]] }).to_string();
            let parsed = KeySet::parse(set.as_bytes()).unwrap();
            assert!(
                parsed.skipped.is_empty(),
                "{}: {:?}",
                e["name"],
                parsed.skipped
            );
            Example {
                name: e["name"].as_str().unwrap().to_owned(),
                alg: e["alg"].as_str().unwrap().parse().unwrap(),
                key: parsed.set.keys.into_iter().next().unwrap(),
                compact: e["compact"].as_str().unwrap().to_owned(),
                payload_is_json: e["payload_is_json"].as_bool().unwrap(),
            }
        })
        .collect()
}

/// (signing input, signature bytes) of a compact JWS.
fn split(compact: &str) -> (&str, Vec<u8>) {
    let (input, sig) = compact.rsplit_once('.').unwrap();
    (input, jws::decode_segment(sig).unwrap())
}

#[test]
fn every_example_verifies_with_its_key() {
    let examples = examples();
    assert_eq!(examples.len(), 3);
    for e in &examples {
        let (input, sig) = split(&e.compact);
        assert!(
            verify_jwk(None, e.alg, &e.key, input.as_bytes(), &sig),
            "{}",
            e.name
        );
        if e.payload_is_json {
            // The whole compact form also parses, with the algorithm the header names.
            let parsed = jws::parse(&e.compact).unwrap();
            assert_eq!(parsed.header.alg, e.alg, "{}", e.name);
            assert!(verify_jwk(
                None,
                parsed.header.alg,
                &e.key,
                parsed.signing_input.as_bytes(),
                &parsed.signature
            ));
        }
    }
}

#[test]
fn a_changed_signature_or_signed_text_is_refused() {
    for e in &examples() {
        let (input, sig) = split(&e.compact);
        for i in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert!(
                !verify_jwk(None, e.alg, &e.key, input.as_bytes(), &bad),
                "{}: signature byte {i} flipped",
                e.name
            );
        }
        let mut text = input.as_bytes().to_vec();
        for i in [0, text.len() - 1] {
            text[i] ^= 0x01;
            assert!(
                !verify_jwk(None, e.alg, &e.key, &text, &sig),
                "{}: signed byte {i} flipped",
                e.name
            );
            text[i] ^= 0x01;
        }
        assert!(
            !verify_jwk(None, e.alg, &e.key, input.as_bytes(), &sig[..sig.len() - 1]),
            "{}: truncated signature",
            e.name
        );
    }
}

#[test]
fn no_example_verifies_under_another_example_key_or_algorithm() {
    let examples = examples();
    for e in &examples {
        let (input, sig) = split(&e.compact);
        for other in examples.iter().filter(|o| o.name != e.name) {
            for alg in Algorithm::ALL {
                assert!(
                    !verify_jwk(None, alg, &other.key, input.as_bytes(), &sig),
                    "{} verified with the key of {} as {alg}",
                    e.name,
                    other.name
                );
            }
        }
        for alg in Algorithm::ALL.into_iter().filter(|a| *a != e.alg) {
            assert!(
                !verify_jwk(None, alg, &e.key, input.as_bytes(), &sig),
                "{} verified as {alg}",
                e.name
            );
        }
    }
}
