//! 6. DPoP-bound opaque tokens of the OP: the binding comes from the answer's `cnf.jkt`.

use super::{
    ProviderShape, Setup, assert_invalid_token, assert_service_allowed, introspection, shape,
};
use base64::Engine;
use e2e::client;
use e2e::oidc_provider::{RESOURCE_OPAQUE, SERVICE_SECRET};
use e2e::third_party::{Build, now_secs, unique};
use serde_json::json;
use test_support::{Issuer, ath};

/// A DPoP proof by `key` for `htm` `htu` (with `ath` of `token` when given).
fn dpop_proof(key: &Issuer, htm: &str, htu: &str, token: Option<&str>) -> String {
    let iat = now_secs();
    let mut claims = json!({"htm": htm, "htu": htu, "iat": iat, "jti": unique("jti")});
    if let Some(token) = token {
        claims["ath"] = json!(ath(token));
    }
    key.proof(&claims)
}

fn dpop_bound_opaque_tokens(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind, |op| ProviderShape {
        dpop: Some("allowed"),
        ..shape(
            vec![RESOURCE_OPAQUE],
            introspection(op.port(), json!({"cache_seconds": 30})),
            false,
        )
    });
    // the provider accepts DPoP (and bearer tokens that are not bound)
    let key = Issuer::es256(51, "dpop-client");
    let other = Issuer::es256(52, "another-client");

    // a DPoP-bound opaque token from the OP (client_credentials with a proof)
    let token_url = s.op().token_url();
    let proof = dpop_proof(&key, "POST", &token_url, None);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("service:{SERVICE_SECRET}"))
    );
    let res = client::post_form(
        &token_url,
        &[("authorization", basic.as_str()), ("dpop", proof.as_str())],
        &[
            ("grant_type", "client_credentials"),
            ("scope", "api"),
            ("resource", RESOURCE_OPAQUE),
        ],
    )
    .unwrap();
    assert_eq!(res.status, 200, "DPoP token request: {}", res.body);
    let body = res.json().unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let bound = body["access_token"].as_str().unwrap().to_owned();
    assert!(!bound.contains('.'), "not opaque: {bound}");
    let answer = s.op().introspect(&bound).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer["cnf"]["jkt"], key.thumbprint(), "{answer}");

    let url = format!("{}/api/hello", s.url);
    let send = |scheme: &str, proof: Option<String>| {
        let auth = format!("{scheme} {bound}");
        let mut headers = vec![("authorization", auth.clone())];
        if let Some(p) = proof {
            headers.push(("dpop", p));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        client::get(&url, &headers).unwrap()
    };
    let before = s.introspections();
    for i in 0..3 {
        let res = send("DPoP", Some(dpop_proof(&key, "GET", &url, Some(&bound))));
        assert_service_allowed(
            &s,
            &res,
            &format!("DPoP-bound opaque token with its proof #{i}"),
        );
    }
    assert_eq!(s.introspections(), before + 1, "[{kind:?}] cached");

    // as a bearer token, without a proof: refused
    let res = send("Bearer", None);
    assert_invalid_token(&res, "DPoP-bound opaque token as a bearer token");
    // a proof by another key: refused
    let res = send("DPoP", Some(dpop_proof(&other, "GET", &url, Some(&bound))));
    assert_eq!(
        res.status, 401,
        "[{kind:?}] proof by another key: {}",
        res.body
    );
    // no proof with the DPoP scheme: refused
    let res = send("DPoP", None);
    assert_eq!(
        res.status, 401,
        "[{kind:?}] DPoP scheme, no proof: {}",
        res.body
    );
    // a proof for another URI: refused
    let res = send(
        "DPoP",
        Some(dpop_proof(
            &key,
            "GET",
            &format!("{}/api/other", s.url),
            Some(&bound),
        )),
    );
    assert_eq!(
        res.status, 401,
        "[{kind:?}] proof for another htu: {}",
        res.body
    );
    assert_eq!(s.counter("denied.dpop_key_mismatch"), 1);
    assert_eq!(s.counter("denied.dpop_bound_token_as_bearer"), 1);
    assert_eq!(
        s.introspections(),
        before + 1,
        "[{kind:?}] the refusals were decided on the cached answer"
    );

    // an unbound opaque token stays a bearer token
    let unbound = s.opaque_token();
    assert_service_allowed(&s, &s.hello(&unbound), "unbound opaque token");
}

#[test]
fn dpop_bound_opaque_tokens_wasm() {
    dpop_bound_opaque_tokens(Build::Wasm);
}

#[test]
fn dpop_bound_opaque_tokens_native() {
    dpop_bound_opaque_tokens(Build::Native);
}
