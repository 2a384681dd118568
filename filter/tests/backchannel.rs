//! Back-Channel Logout 1.0 §2.6: a valid ES256 and RS256 logout token, then each rule broken once
//! by one deliberate change to a valid token, each giving its own error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use common::{Issuer, KeySetOf, NOW, b64};
use filter::jose::algorithm::Algorithm;
use filter::jose::jwk::KeySet;
use filter::logout::backchannel::{
    EVENT, LogoutEvent, LogoutTokenError, LogoutTokenPolicy, MAX_TOKEN_BYTES, error_body,
    unverified_issuer, validate_logout_token,
};
use serde_json::{Value, json};

const OP: &str = "https://op.example";
const CLIENT: &str = "webapp";

fn audiences() -> Vec<String> {
    vec![CLIENT.to_owned(), "other-app".to_owned()]
}

const ALGORITHMS: [Algorithm; 2] = [Algorithm::Es256, Algorithm::Rs256];

fn policy(audiences: &[String]) -> LogoutTokenPolicy<'_> {
    LogoutTokenPolicy {
        issuer: OP,
        audiences,
        algorithms: &ALGORITHMS,
        leeway_seconds: 30,
        max_age_seconds: 120,
    }
}

fn claims() -> Value {
    json!({
        "iss": OP, "aud": CLIENT, "iat": NOW - 5, "exp": NOW + 115, "jti": "bcl-1",
        "sid": "sid-7", "sub": "alice", "events": {EVENT: {}}
    })
}

fn with(change: Value) -> Value {
    let mut c = claims();
    for (k, v) in change.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn header(op: &Issuer) -> Value {
    json!({"alg": "ES256", "typ": "logout+jwt", "kid": op.kid()})
}

fn op() -> Issuer {
    Issuer::es256(3, "op-1")
}

fn check(token: &str) -> Result<LogoutEvent, LogoutTokenError> {
    let aud = audiences();
    validate_logout_token(&policy(&aud), &op().key_set(), token, NOW, None)
}

fn signed(claims: &Value) -> String {
    let op = op();
    op.sign(&header(&op), claims)
}

#[test]
fn a_valid_es256_token_gives_its_event() {
    let event = check(&signed(&claims())).unwrap();
    assert_eq!(
        event,
        LogoutEvent {
            issuer: OP.to_owned(),
            sid: Some("sid-7".to_owned()),
            sub: Some("alice".to_owned()),
            iat: NOW - 5,
            exp: Some(NOW + 115),
            jti: "bcl-1".to_owned(),
        }
    );
    // aud as an array, no exp, sub only, typ absent or the full media type: all valid.
    let op = op();
    let minimal = with(json!({"aud": ["x", CLIENT], "exp": null, "sid": null}));
    for h in [
        json!({"alg": "ES256", "kid": "op-1"}),
        json!({"alg": "ES256", "kid": "op-1", "typ": "application/logout+JWT"}),
        json!({"alg": "ES256"}),
    ] {
        let e = check(&op.sign(&h, &minimal)).unwrap();
        assert_eq!(
            (e.sid, e.sub.as_deref(), e.exp),
            (None, Some("alice"), None)
        );
    }
}

/// An RS256 token and its key set (2048-bit key made by aws-lc-rs).
fn rs256(claims: &Value) -> (String, KeySet) {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
    let pair = RsaKeyPair::from_pkcs8(der.as_ref()).unwrap();
    let public = key.public_key();
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero())}]});
    let header = json!({"alg": "RS256", "typ": "logout+jwt", "kid": "rsa-1"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
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

#[test]
fn a_valid_rs256_token_gives_its_event_and_only_where_rs256_is_allowed() {
    let (token, keys) = rs256(&claims());
    let aud = audiences();
    let event = validate_logout_token(&policy(&aud), &keys, &token, NOW, None).unwrap();
    assert_eq!(event.sid.as_deref(), Some("sid-7"));
    let es_only = LogoutTokenPolicy {
        algorithms: &[Algorithm::Es256],
        ..policy(&aud)
    };
    assert_eq!(
        validate_logout_token(&es_only, &keys, &token, NOW, None),
        Err(LogoutTokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn each_claim_rule_broken_once() {
    use LogoutTokenError::*;
    let cases = [
        (json!({"iss": "https://other.example"}), WrongIssuer),
        (json!({"iss": null}), WrongIssuer),
        (json!({"aud": "someone-else"}), WrongAudience),
        (json!({"aud": ["a", "b"]}), WrongAudience),
        (json!({"aud": null}), WrongAudience),
        (json!({"iat": null}), MissingIssuedAt),
        (
            json!({"iat": "yesterday"}),
            Malformed("a date claim is not a number"),
        ),
        // older than max_age (120) + leeway (30)
        (json!({"iat": NOW - 151}), Stale),
        (json!({"iat": NOW + 31}), IssuedInFuture),
        (json!({"exp": NOW - 30}), Expired),
        (json!({"jti": null}), MissingJti),
        (json!({"jti": ""}), MissingJti),
        (json!({"events": null}), MissingEvent),
        (json!({"events": {"http://other/event": {}}}), MissingEvent),
        (
            json!({"events": {EVENT: "yes"}}),
            Malformed("the back-channel logout event is not a JSON object"),
        ),
        (
            json!({"events": [EVENT]}),
            Malformed("events is not a JSON object"),
        ),
        (json!({"nonce": "n-1"}), NoncePresent),
        (json!({"sid": null, "sub": null}), MissingSubject),
        (json!({"sid": "", "sub": null}), MissingSubject),
        (
            json!({"sid": 7}),
            Malformed("a string claim has another type"),
        ),
    ];
    for (change, want) in cases {
        assert_eq!(check(&signed(&with(change.clone()))), Err(want), "{change}");
    }
}

#[test]
fn boundaries_of_the_time_window_hold() {
    assert!(check(&signed(&with(json!({"iat": NOW - 150})))).is_ok());
    assert!(check(&signed(&with(json!({"iat": NOW + 30})))).is_ok());
    assert!(check(&signed(&with(json!({"exp": NOW - 29})))).is_ok());
}

#[test]
fn header_and_signature_rules_broken_once() {
    use LogoutTokenError::*;
    let op = op();
    let c = claims();
    let typ = |t: &str| json!({"alg": "ES256", "kid": "op-1", "typ": t});
    assert_eq!(check(&op.sign(&typ("JWT"), &c)), Err(WrongType));
    assert_eq!(check(&op.sign(&typ("at+jwt"), &c)), Err(WrongType));
    // alg none and HMAC: never, whatever the allow-list.
    for alg in ["none", "HS256"] {
        let h = b64(json!({"alg": alg, "typ": "logout+jwt"})
            .to_string()
            .as_bytes());
        let p = b64(c.to_string().as_bytes());
        assert_eq!(
            check(&format!("{h}.{p}.c2ln")),
            Err(UnsupportedAlgorithm),
            "{alg}"
        );
    }
    let ed = Issuer::eddsa(4, "op-1");
    assert_eq!(
        check(&ed.sign(&json!({"alg": "EdDSA", "kid": "op-1"}), &c)),
        Err(UnsupportedAlgorithm)
    );
    // Another key, same kid; an unknown kid; no keys at all.
    let rogue = Issuer::es256(9, "op-1");
    assert_eq!(check(&rogue.sign(&header(&rogue), &c)), Err(BadSignature));
    let stranger = Issuer::es256(9, "op-2");
    assert_eq!(
        check(&stranger.sign(&header(&stranger), &c)),
        Err(UnknownKey)
    );
    let aud = audiences();
    assert_eq!(
        validate_logout_token(&policy(&aud), &KeySet::default(), &signed(&c), NOW, None),
        Err(NoKeys)
    );
    // A changed payload under the original signature.
    let token = signed(&c);
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64(with(json!({"sid": "sid-8"})).to_string().as_bytes());
    assert_eq!(
        check(&format!("{}.{forged}.{}", parts[0], parts[2])),
        Err(BadSignature)
    );
}

#[test]
fn form_and_size_rules() {
    use LogoutTokenError::*;
    assert!(matches!(check("not-a-jws"), Err(Malformed(_))));
    assert!(matches!(check("a.b.c.d.e"), Err(Malformed(_))));
    let big = signed(&with(json!({"pad": "x".repeat(MAX_TOKEN_BYTES)})));
    assert_eq!(check(&big), Err(TooLarge));
    // Duplicate members are refused before anything else is read.
    let op = op();
    let dup = op.sign_raw(
        &header(&op).to_string(),
        &format!(
            r#"{{"iss":"{OP}","iss":"{OP}","aud":"{CLIENT}","iat":{},"jti":"j","sub":"a","events":{{"{EVENT}":{{}}}}}}"#,
            NOW
        ),
    );
    assert!(matches!(check(&dup), Err(Malformed(_))));
}

#[test]
fn the_unverified_issuer_picks_the_provider() {
    assert_eq!(unverified_issuer(&signed(&claims())).as_deref(), Some(OP));
    assert_eq!(unverified_issuer(&signed(&with(json!({"iss": 5})))), None);
    assert_eq!(unverified_issuer("x.y.z"), None);
    assert_eq!(unverified_issuer(""), None);
}

#[test]
fn the_error_body_names_the_rule() {
    let body: Value = serde_json::from_str(&error_body(LogoutTokenError::Replayed)).unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "the logout token was received before"})
    );
}
