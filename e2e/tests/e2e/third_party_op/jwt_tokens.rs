//! 1. The OP's JWT access tokens (ES256 and RS256 resources) accepted with their claims
//!    forwarded; no token, a tampered token, a token without its signature and an opaque token
//!    refused.

use super::{Setup, assert_gateway_refused, with_payload};
use e2e::oidc_provider::{RESOURCE_ES256, RESOURCE_OPAQUE, RESOURCE_RS256, decode_jwt};
use e2e::third_party::Build;

fn jwt_access_tokens(kind: Build) {
    let _slot = crate::slot();
    let s = Setup::start(kind);
    for (resource, alg) in [(RESOURCE_ES256, "ES256"), (RESOURCE_RS256, "RS256")] {
        let token = s.op.client_credentials(resource).unwrap();
        let (header, _) = decode_jwt(&token).unwrap();
        assert_eq!(header["alg"], alg, "{header}");
        assert_eq!(header["typ"], "at+jwt", "{header}");

        let res = s.hello(Some(&token));
        assert_eq!(res.status, 200, "{alg}: {}", res.body);
        // the verified claims reached the resource server as the filter's headers
        let body = res.json().unwrap();
        assert_eq!(body["sub"], "service", "{alg}: {body}");
        assert_eq!(body["client_id"], "service", "{alg}: {body}");
        assert_eq!(body["scope"], "api", "{alg}: {body}");
        assert_eq!(body["issuer"], s.op.issuer(), "{alg}: {body}");

        let tampered = with_payload(&token, |c| c["sub"] = "admin".into());
        assert_gateway_refused(&s.hello(Some(&tampered)), &format!("{alg} tampered"));
        let stripped = format!("{}.", token.rsplit_once('.').unwrap().0);
        assert_gateway_refused(&s.hello(Some(&stripped)), &format!("{alg} no signature"));
    }
    let missing = s.hello(None);
    assert_gateway_refused(&missing, "no token");
    assert!(
        !missing
            .header("www-authenticate")
            .unwrap_or("")
            .contains("error="),
        "no token: RFC 6750 §3.1 says no error code: {:?}",
        missing.headers
    );

    // Opaque access tokens (RFC 7662 introspection) are not supported yet: today such a token is
    // refused as malformed (401). Introspection is being added (issue 26 §3); this assertion
    // pins today's behaviour and must change with it.
    let opaque = s.op.client_credentials(RESOURCE_OPAQUE).unwrap();
    assert!(!opaque.contains('.'), "not opaque: {opaque}");
    assert_gateway_refused(&s.hello(Some(&opaque)), "opaque token");
    let (introspections, _) = s.op.counters().unwrap();
    assert_eq!(introspections, 0, "the gateway introspects nothing today");
    assert!(
        s.counter("allowed") >= 2,
        "allowed: {}",
        s.counter("allowed")
    );
}

#[test]
fn jwt_access_tokens_wasm() {
    jwt_access_tokens(Build::Wasm);
}

#[test]
fn jwt_access_tokens_native() {
    jwt_access_tokens(Build::Native);
}
