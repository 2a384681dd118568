//! Header and scheme rules (two proofs, downgrade, unbound tokens), forwarding, answers, config.

use crate::common::*;
use crate::support::*;

use filter::admission::gateway::{Outcome, denial_response};
use filter::config::FilterConfig;
use filter::http::denial::{Denial, DpopDenial};
use serde_json::{Value, json};
use test_support::proof_claims;

#[test]
fn two_dpop_headers() {
    let key = client();
    let token = bound_token(&key);
    let auth = dpop_auth(&token);
    let (a, b) = (proof_for(&key, &token, "a"), proof_for(&key, &token, "b"));
    let gateway = Gateway::new(dpop_config("allowed"));
    assert_eq!(
        gateway.once(&[("authorization", &auth), ("dpop", &a), ("DPoP", &b)]),
        denied(DpopDenial::MultipleProofs)
    );
    let folded = format!("{a}, {b}");
    assert_eq!(
        gateway.once(&[("authorization", &auth), ("dpop", &folded)]),
        denied(DpopDenial::MultipleProofs)
    );
    assert_eq!(
        gateway.once(&[("authorization", &auth)]),
        denied(DpopDenial::MissingProof)
    );
}

#[test]
fn bound_token_as_bearer() {
    let key = client();
    let token = bound_token(&key);
    let bearer = format!("Bearer {token}");
    let proof = proof_for(&key, &token, "b");
    for mode in ["disabled", "allowed", "required"] {
        let gateway = Gateway::new(dpop_config(mode));
        assert_eq!(
            gateway.once(&[("authorization", &bearer), ("dpop", &proof)]),
            denied(DpopDenial::BoundTokenAsBearer),
            "{mode}"
        );
    }
}

#[test]
fn dpop_scheme_with_unbound_token_under_required() {
    let key = client();
    let token = unbound_token();
    let (auth, proof) = (dpop_auth(&token), proof_for(&key, &token, "u"));
    assert_eq!(
        Gateway::new(dpop_config("required")).once(&[("authorization", &auth), ("dpop", &proof)]),
        denied(DpopDenial::UnboundToken)
    );
    // A bearer token where DPoP is required.
    let bearer = format!("Bearer {token}");
    assert_eq!(
        Gateway::new(dpop_config("required")).once(&[("authorization", &bearer)]),
        denied(DpopDenial::BearerNotAccepted)
    );
    // Allowed: the bearer token is fine as Bearer.
    assert!(is_forward(
        &Gateway::new(dpop_config("allowed")).once(&[("authorization", &bearer)])
    ));
}

#[test]
fn dpop_scheme_where_disabled() {
    let key = client();
    let token = bound_token(&key);
    let (auth, proof) = (dpop_auth(&token), proof_for(&key, &token, "d"));
    // Two providers, one with DPoP disabled: its tokens are refused under the DPoP scheme.
    let config = config_with(json!({"providers": [
        {"dpop": "disabled"},
        {"name": "other", "issuer": "https://other.example", "audiences": ["x"], "algorithms": ["ES256"],
         "jwks": {"cluster": "other", "path": "/jwks"}, "dpop": "allowed"}
    ]}));
    assert_eq!(
        Gateway::new(config).once(&[("authorization", &auth), ("dpop", &proof)]),
        denied(DpopDenial::SchemeNotAccepted)
    );
    // With DPoP disabled everywhere, the DPoP scheme is not read at all (as before DPoP).
    assert_eq!(
        Gateway::new(dpop_config("disabled")).once(&[("authorization", &auth), ("dpop", &proof)]),
        Outcome::Deny(Denial::Missing)
    );
}

#[test]
fn a_proof_is_not_forwarded_when_the_token_is_not() {
    let key = client();
    let token = bound_token(&key);
    let (auth, proof) = (dpop_auth(&token), proof_for(&key, &token, "f"));
    let config = config_with(json!({"providers": [{"dpop": "allowed", "forward_token": false}]}));
    match Gateway::new(config).once(&[("authorization", &auth), ("dpop", &proof)]) {
        Outcome::Forward { remove_headers, .. } => {
            assert!(remove_headers.contains(&"authorization".to_owned()));
            assert!(remove_headers.contains(&"dpop".to_owned()));
        }
        other => panic!("{other:?}"),
    }
    match Gateway::new(dpop_config("allowed")).once(&[("authorization", &auth), ("dpop", &proof)]) {
        Outcome::Forward { remove_headers, .. } => assert!(remove_headers.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_configured_public_origin_is_the_htu() {
    let key = client();
    let token = bound_token(&key);
    let auth = dpop_auth(&token);
    let config = config_with(
        json!({"providers": [{"dpop": "allowed", "dpop_htu_base": "https://public.example"}]}),
    );
    let gateway = Gateway::new(config);
    let proof = key.proof(&proof_claims(
        "GET",
        "https://public.example/api/x",
        NOW,
        "p",
        &token,
    ));
    assert!(is_forward(
        &gateway.once(&[("authorization", &auth), ("dpop", &proof)])
    ));
    let proof = proof_for(&key, &token, "q");
    assert_eq!(
        gateway.once(&[("authorization", &auth), ("dpop", &proof)]),
        denied(DpopDenial::WrongUri)
    );
}

#[test]
fn the_answers_carry_dpop_and_bearer_challenges() {
    let allowed = dpop_config("allowed");
    let answer = |config: &FilterConfig, auth: &str, denial: Denial| {
        denial_response(config, &[("authorization", auth)], &denial)
    };
    let r = answer(&allowed, "DPoP x", Denial::Dpop(DpopDenial::Replayed));
    assert_eq!(r.status, 401);
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some(
            "DPoP realm=\"gateway\", algs=\"ES256 RS256 PS256 EdDSA\", error=\"invalid_dpop_proof\", error_description=\"the DPoP proof was used before\", Bearer realm=\"gateway\""
        )
    );
    let r = answer(
        &allowed,
        "Bearer x",
        Denial::Dpop(DpopDenial::BoundTokenAsBearer),
    );
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some(
            "Bearer realm=\"gateway\", error=\"invalid_token\", error_description=\"the access token is DPoP-bound: use the DPoP scheme with a proof\", DPoP realm=\"gateway\", algs=\"ES256 RS256 PS256 EdDSA\""
        )
    );
    // No token: both schemes offered, no error (RFC 9449 §7.2, Figure 17).
    let r = denial_response(&allowed, &[], &Denial::Missing);
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some("Bearer realm=\"gateway\", DPoP realm=\"gateway\", algs=\"ES256 RS256 PS256 EdDSA\"")
    );
    // An expired token under the DPoP scheme: the error goes in the DPoP challenge.
    let r = answer(&allowed, "DPoP x", Denial::Expired);
    assert!(r.www_authenticate.unwrap().starts_with(
        "DPoP realm=\"gateway\", algs=\"ES256 RS256 PS256 EdDSA\", error=\"invalid_token\""
    ));
    // Required: no Bearer challenge at all; the configured algorithms only.
    let required = config_with(
        json!({"providers": [{"dpop": "required", "dpop_algorithms": ["ES256", "EdDSA"]}]}),
    );
    let r = answer(
        &required,
        "Bearer x",
        Denial::Dpop(DpopDenial::BearerNotAccepted),
    );
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some(
            "DPoP realm=\"gateway\", algs=\"ES256 EdDSA\", error=\"invalid_token\", error_description=\"a DPoP-bound access token is required\""
        )
    );
    // Disabled (the default): the answers are the RFC 6750 ones.
    let r = answer(&dpop_config("disabled"), "Bearer x", Denial::Expired);
    assert!(
        r.www_authenticate
            .unwrap()
            .starts_with("Bearer realm=\"gateway\", error=\"invalid_token\"")
    );
    // A full replay cache fails closed with 503.
    assert_eq!(
        answer(
            &allowed,
            "DPoP x",
            Denial::Dpop(DpopDenial::ReplayCacheFull)
        )
        .status,
        503
    );
}

#[test]
fn dpop_configuration_errors_name_the_field() {
    let bad = |provider: Value| {
        let mut base = json!({"providers": [{
            "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"cluster": "idp", "path": "/jwks"}
        }]});
        test_support::merge(&mut base, json!({"providers": [provider]}));
        FilterConfig::from_json(base.to_string().as_bytes()).unwrap_err()
    };
    assert_eq!(bad(json!({"dpop": "sometimes"})).field, "configuration");
    for (provider, field) in [
        (
            json!({"dpop": "allowed", "dpop_algorithms": ["HS256"]}),
            "providers[0].dpop_algorithms[0]",
        ),
        (
            json!({"dpop": "allowed", "dpop_algorithms": ["none"]}),
            "providers[0].dpop_algorithms[0]",
        ),
        (
            json!({"dpop": "allowed", "dpop_algorithms": []}),
            "providers[0].dpop_algorithms",
        ),
        (
            json!({"dpop": "allowed", "dpop_proof_max_age_seconds": 0}),
            "providers[0].dpop_proof_max_age_seconds",
        ),
        (
            json!({"dpop": "allowed", "dpop_proof_leeway_seconds": 301}),
            "providers[0].dpop_proof_leeway_seconds",
        ),
        (
            json!({"dpop": "allowed", "dpop_htu_base": "https://h/path"}),
            "providers[0].dpop_htu_base",
        ),
        (
            json!({"dpop": "required", "token_sources": [{"cookie": "at"}]}),
            "providers[0].dpop",
        ),
    ] {
        assert_eq!(bad(provider.clone()).field, field, "{provider}");
    }
    let e = FilterConfig::from_json(
        json!({"providers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"cluster": "idp", "path": "/jwks"}}], "dpop_replay_cache_entries": 10})
        .to_string()
        .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.field, "dpop_replay_cache_entries");
}

#[test]
fn an_unknown_confirmation_method_is_refused() {
    let mut claims = claims();
    claims["cnf"] = json!({"x5t#S256": "abc"});
    let token = Issuer::es256(1, "k1").token(&claims);
    let bearer = format!("Bearer {token}");
    assert!(matches!(
        Gateway::new(dpop_config("disabled")).once(&[("authorization", &bearer)]),
        Outcome::Deny(Denial::Malformed(_))
    ));
}

#[test]
fn a_bound_token_from_another_token_source_is_a_downgrade() {
    let key = client();
    let token = bound_token(&key);
    let cookie = format!("at={token}");
    let proof = proof_for(&key, &token, "c");
    let config = config_with(json!({"providers": [{
        "dpop": "allowed",
        "token_sources": [{"header": "authorization", "prefix": "Bearer "}, {"cookie": "at"}]
    }]}));
    assert_eq!(
        Gateway::new(config).once(&[("cookie", &cookie), ("dpop", &proof)]),
        denied(DpopDenial::BoundTokenAsBearer)
    );
}
