//! Token validation, one failure mode per test, each a deliberate change to a valid token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;
use filter::http::denial::Denial;
use filter::validation::validate;
use serde_json::json;

fn check(
    issuer: &Issuer,
    token: &str,
) -> Result<filter::validation::verified_token::VerifiedToken, Denial> {
    let config = config_with(json!({}));
    validate(&config, &[&issuer.key_set()], token, NOW)
}

fn with(change: serde_json::Value) -> serde_json::Value {
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

#[test]
fn a_valid_token_is_accepted_with_its_claims() {
    let idp = Issuer::es256(1, "k1");
    let v = check(&idp, &idp.token(&claims())).unwrap();
    assert_eq!(v.sub.as_deref(), Some("alice"));
    assert_eq!(v.sid.as_deref(), Some("sid-1"));
    assert_eq!(v.jti.as_deref(), Some("jti-1"));
    assert_eq!(v.scopes, ["read", "write"]);
    assert_eq!(v.lifetime.exp, NOW + 300);
}

#[test]
fn a_changed_payload_breaks_the_signature() {
    let idp = Issuer::es256(1, "k1");
    let token = idp.token(&claims());
    let forged_payload = b64(with(json!({"scope": "admin"})).to_string().as_bytes());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(check(&idp, &forged).unwrap_err(), Denial::BadSignature);
}

#[test]
fn a_token_signed_by_another_key_with_the_same_kid_is_refused() {
    let idp = Issuer::es256(1, "k1");
    let rogue = Issuer::es256(2, "k1");
    assert_eq!(
        check(&idp, &rogue.token(&claims())).unwrap_err(),
        Denial::BadSignature
    );
}

#[test]
fn an_unknown_kid_is_reported_as_such() {
    let idp = Issuer::es256(1, "k1");
    let rotated = Issuer::es256(2, "k2");
    assert_eq!(
        check(&idp, &rotated.token(&claims())).unwrap_err(),
        Denial::UnknownKey
    );
}

#[test]
fn no_keys_yet_fails_closed() {
    let idp = Issuer::es256(1, "k1");
    let config = config_with(json!({}));
    let empty = filter::jose::jwk::KeySet::default();
    assert_eq!(
        validate(&config, &[&empty], &idp.token(&claims()), NOW).unwrap_err(),
        Denial::NoKeys
    );
}

#[test]
fn algorithms_outside_the_allow_list_are_refused() {
    let ed = Issuer::eddsa(3, "k1");
    // EdDSA is a good algorithm, but this provider allows ES256 only.
    assert_eq!(
        check(&ed, &ed.token(&claims())).unwrap_err(),
        Denial::UnsupportedAlgorithm
    );
    // Allowed, it verifies.
    let config = config_with(json!({"providers": [{"algorithms": ["EdDSA"]}]}));
    assert!(validate(&config, &[&ed.key_set()], &ed.token(&claims()), NOW).is_ok());
}

#[test]
fn alg_none_and_hmac_are_never_accepted() {
    let idp = Issuer::es256(1, "k1");
    for alg in ["none", "HS256", "RS512", "es256"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "k1"});
        let token = idp.sign(&header, &claims());
        let err = check(&idp, &token).unwrap_err();
        assert!(
            matches!(err, Denial::Malformed(_) | Denial::UnsupportedAlgorithm),
            "{alg}: {err:?}"
        );
    }
    // An unsigned token (empty signature) is malformed.
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none"}).to_string().as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    assert!(check(&idp, &unsigned).is_err());
}

#[test]
fn key_type_must_match_the_algorithm() {
    // An ES256 token whose kid names an Ed25519 key: no usable key.
    let ed = Issuer::eddsa(3, "shared");
    let es = Issuer::es256(1, "shared");
    let config = config_with(json!({"providers": [{"algorithms": ["ES256", "EdDSA"]}]}));
    let err = validate(&config, &[&ed.key_set()], &es.token(&claims()), NOW).unwrap_err();
    assert_eq!(err, Denial::UnknownKey);
}

#[test]
fn expiry_and_not_before_respect_the_leeway() {
    let idp = Issuer::es256(1, "k1");
    let expired_in_leeway = idp.token(&with(json!({"exp": NOW - 29})));
    assert!(check(&idp, &expired_in_leeway).is_ok());
    let expired = idp.token(&with(json!({"exp": NOW - 31})));
    assert_eq!(check(&idp, &expired).unwrap_err(), Denial::Expired);
    let future = idp.token(&with(json!({"nbf": NOW + 31})));
    assert_eq!(check(&idp, &future).unwrap_err(), Denial::NotYetValid);
}

/// Issue 20, defect 12: `iat` in the future, beyond the leeway (30 s here), is refused as `nbf`
/// is. Named vectors: (name, claims changed from a valid token, expected result).
#[test]
fn vector_iat_in_the_future_beyond_the_leeway_is_refused() {
    let idp = Issuer::es256(1, "k1");
    let vectors = [
        (
            "iat-a-day-ahead",
            json!({"iat": NOW + 86_400, "nbf": null}),
            Err(Denial::NotYetValid),
        ),
        (
            "iat-just-past-leeway",
            json!({"iat": NOW + 31, "nbf": null}),
            Err(Denial::NotYetValid),
        ),
        (
            "iat-ahead-nbf-past",
            json!({"iat": NOW + 3_600, "nbf": NOW - 10}),
            Err(Denial::NotYetValid),
        ),
        (
            "iat-at-leeway-edge",
            json!({"iat": NOW + 30, "nbf": null}),
            Ok(()),
        ),
        ("iat-now", json!({"iat": NOW, "nbf": null}), Ok(())),
        ("iat-absent", json!({"iat": null, "nbf": null}), Ok(())),
    ];
    for (name, change, expected) in vectors {
        let got = check(&idp, &idp.token(&with(change))).map(|_| ());
        assert_eq!(got, expected, "vector {name}");
    }
}

#[test]
fn missing_or_garbage_exp_is_refused_never_read_as_no_expiry() {
    let idp = Issuer::es256(1, "k1");
    for change in [
        json!({"exp": null}),
        json!({"exp": "1900000000"}),
        json!({"exp": -1}),
        json!({"exp": 1e300}),
        json!({"nbf": "0"}),
    ] {
        let err = check(&idp, &idp.token(&with(change.clone()))).unwrap_err();
        assert!(matches!(err, Denial::Malformed(_)), "{change}: {err:?}");
    }
}

#[test]
fn issuer_and_audience_must_match() {
    let idp = Issuer::es256(1, "k1");
    assert_eq!(
        check(
            &idp,
            &idp.token(&with(json!({"iss": "https://evil.example"})))
        )
        .unwrap_err(),
        Denial::WrongIssuer
    );
    assert_eq!(
        check(&idp, &idp.token(&with(json!({"iss": null})))).unwrap_err(),
        Denial::WrongIssuer
    );
    assert_eq!(
        check(&idp, &idp.token(&with(json!({"aud": "other-api"})))).unwrap_err(),
        Denial::WrongAudience
    );
    assert_eq!(
        check(&idp, &idp.token(&with(json!({"aud": null})))).unwrap_err(),
        Denial::WrongAudience
    );
    assert!(
        check(
            &idp,
            &idp.token(&with(json!({"aud": ["other-api", AUDIENCE]})))
        )
        .is_ok()
    );
}

#[test]
fn only_access_token_types_are_accepted() {
    let idp = Issuer::es256(1, "k1");
    // An ID token (typ JWT) must not be usable as an access token.
    let id_token = idp.sign(
        &json!({"alg": "ES256", "typ": "JWT", "kid": "k1"}),
        &claims(),
    );
    assert_eq!(check(&idp, &id_token).unwrap_err(), Denial::WrongType);
    let untyped = idp.sign(&json!({"alg": "ES256", "kid": "k1"}), &claims());
    assert_eq!(check(&idp, &untyped).unwrap_err(), Denial::WrongType);
}

#[test]
fn duplicate_claims_are_malformed() {
    let idp = Issuer::es256(1, "k1");
    let payload = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"sub":"alice","sub":"admin"}}"#,
        NOW + 60
    );
    let token = idp.sign_raw(&idp.header().to_string(), &payload);
    assert!(matches!(
        check(&idp, &token).unwrap_err(),
        Denial::Malformed(_)
    ));
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let idp = Issuer::es256(1, "k1");
    let big = idp.token(&with(json!({"pad": "x".repeat(9_000)})));
    assert_eq!(check(&idp, &big).unwrap_err(), Denial::TooLarge);
}

#[test]
fn the_right_provider_is_chosen_by_issuer() {
    let a = Issuer::es256(1, "a");
    let b = Issuer::es256(2, "b");
    let config = config_with(json!({"providers": [
        {"name": "a", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"]},
        {"name": "b", "issuer": "https://b.example", "audiences": ["b-api"], "algorithms": ["ES256"],
         "jwks": {"cluster": "b", "path": "/jwks"}}
    ]}));
    let keys = [a.key_set(), b.key_set()];
    let keys: Vec<_> = keys.iter().collect();
    let tb = b.token(&with(json!({"iss": "https://b.example", "aud": "b-api"})));
    assert_eq!(validate(&config, &keys, &tb, NOW).unwrap().provider, 1);
    // b's key cannot sign for a's issuer.
    let cross = b.token(&claims());
    assert_eq!(
        validate(&config, &keys, &cross, NOW).unwrap_err(),
        Denial::UnknownKey
    );
}
