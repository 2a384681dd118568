//! Algorithm and format attacks, each built from a valid token by one deliberate change; all
//! must be refused. Keys are fixed (seeded), so every vector is reproducible.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;
use filter::http::denial::Denial;
use filter::validation::validate;
use serde_json::json;

fn check(token: &str) -> Result<filter::validation::verified_token::VerifiedToken, Denial> {
    let idp = Issuer::es256(1, "k1");
    let config = config_with(json!({"providers": [{"algorithms": ["ES256", "EdDSA"]}]}));
    validate(&config, &[&idp.key_set()], token, NOW)
}

fn payload() -> String {
    b64(claims().to_string().as_bytes())
}

#[test]
fn the_valid_baseline_passes() {
    assert!(check(&Issuer::es256(1, "k1").token(&claims())).is_ok());
}

#[test]
fn alg_none_is_refused() {
    for sig in ["", "AAAA"] {
        let header = b64(json!({"alg": "none", "typ": "at+jwt"})
            .to_string()
            .as_bytes());
        let token = format!("{header}.{}.{sig}", payload());
        assert!(check(&token).is_err(), "alg none with signature {sig:?}");
    }
}

#[test]
fn rs256_to_hs256_confusion_is_refused() {
    // The classic attack HMACs the token with the public key as the secret. HS* are never accepted
    // (they are not even parseable algorithms here), whatever the MAC.
    for alg in ["HS256", "HS384", "HS512"] {
        let header = b64(json!({"alg": alg, "typ": "at+jwt", "kid": "k1"})
            .to_string()
            .as_bytes());
        let token = format!("{header}.{}.{}", payload(), b64(&[7u8; 32]));
        assert_eq!(
            check(&token).unwrap_err(),
            Denial::UnsupportedAlgorithm,
            "{alg}"
        );
    }
}

#[test]
fn embedded_keys_and_key_urls_are_ignored() {
    // The attacker signs with their own key and offers it in the header, inline or by URL. Keys
    // come only from the configured JWKS, so the signature does not verify.
    let attacker = Issuer::es256(9, "k1");
    for extra in [
        json!({"jwk": attacker.jwk()}),
        json!({"jku": "http://attacker.example/jwks.json"}),
        json!({"x5u": "http://attacker.example/cert.pem"}),
        json!({"x5c": ["MIIB"]}),
    ] {
        let mut header = attacker.header();
        for (k, v) in extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        let token = attacker.sign(&header, &claims());
        assert_eq!(check(&token).unwrap_err(), Denial::BadSignature, "{extra}");
        // without a kid, every configured key is tried, and none verifies
        header.as_object_mut().unwrap().remove("kid");
        let token = attacker.sign(&header, &claims());
        assert_eq!(
            check(&token).unwrap_err(),
            Denial::BadSignature,
            "{extra} without kid"
        );
    }
}

#[test]
fn crit_headers_are_refused_even_when_signed() {
    let idp = Issuer::es256(1, "k1");
    let mut header = idp.header();
    header["crit"] = json!(["exp"]);
    assert!(matches!(
        check(&idp.sign(&header, &claims())).unwrap_err(),
        Denial::Malformed(_)
    ));
    let mut header = idp.header();
    header["b64"] = json!(false);
    header["crit"] = json!(["b64"]);
    assert!(matches!(
        check(&idp.sign(&header, &claims())).unwrap_err(),
        Denial::Malformed(_)
    ));
}

#[test]
fn non_canonical_base64_is_refused() {
    let idp = Issuer::es256(1, "k1");
    let token = idp.token(&claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    // 64 signature bytes leave 4 unused bits in the last character: set one.
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    let tweaked = alphabet.chars().nth(idx | 1).unwrap();
    assert_ne!(tweaked, last, "the vector must change the trailing bits");
    let non_canonical = format!("{input}.{}{tweaked}", &sig[..sig.len() - 1]);
    assert!(matches!(
        check(&non_canonical).unwrap_err(),
        Denial::Malformed(_)
    ));
    // padding, standard-alphabet characters and whitespace are refused too
    for bad in [
        format!("{token}=="),
        token.replace('-', "+"),
        format!(" {token}"),
    ] {
        if bad != token {
            assert!(check(&bad).is_err(), "{bad}");
        }
    }
}

#[test]
fn signature_malleability_and_truncation_are_refused() {
    let idp = Issuer::es256(1, "k1");
    let token = idp.token(&claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = filter::jose::jws::decode_segment(sig).unwrap();
    // truncated and extended signatures
    for len in [0usize, 63, 65] {
        let mut b = bytes.clone();
        b.resize(len, 0);
        if len > 0 {
            assert!(
                check(&format!("{input}.{}", b64(&b))).is_err(),
                "signature of {len} bytes"
            );
        }
    }
    // a flipped bit
    bytes[10] ^= 1;
    assert_eq!(
        check(&format!("{input}.{}", b64(&bytes))).unwrap_err(),
        Denial::BadSignature
    );
    // four segments (JWE-like) or two
    assert!(check(&format!("{token}.x")).is_err());
    assert!(check(input).is_err());
}
