//! Compact JWS → the gateway's decision, with the fixed key set, differentially:
//! - the pure-Rust and the native (AWS-LC) signature paths decide alike;
//! - a token the core accepts is accepted by the reference (jsonwebtoken + the RFC claim rules),
//!   with the same claims;
//! - the whole request path (`decide`, Bearer header) forwards only a token the reference accepts
//!   and that is not DPoP-bound, and decides the same again from its verified-token cache.
#![no_main]

use filter::shared_state::denylist::Denylist;
use filter::admission::gateway::{Knowledge, Outcome, RequestInfo, decide};
use filter::shared_state::MemoryShared;
use filter::admission::token_cache::TokenCache;
use filter::validation::validate_with;
use gateway_fuzz::fixtures::{NOW, gateway, request_headers};
use gateway_fuzz::reference::verify_access_token;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let g = gateway();
    let keys = [&g.keys];
    let pure = validate_with(&g.config, &keys, token, NOW, None);
    let native = validate_with(&g.config, &keys, token, NOW, Some(&g.native));
    assert_eq!(
        pure.as_ref().err(),
        native.as_ref().err(),
        "pure-Rust and native verification disagree"
    );
    if let Ok(verified) = &pure {
        match verify_access_token(g, token) {
            Ok(claims) => assert_eq!(claims, verified.claims, "claims differ from the reference"),
            Err(why) => panic!("accepted a token the reference refuses: {why}"),
        }
    }

    let authorization = format!("Bearer {token}");
    let headers = request_headers(&[("authorization", &authorization)]);
    let denylist = Denylist::default();
    let replay = MemoryShared::default();
    let k = Knowledge {
        keys: &keys,
        denylist: &denylist,
        now: NOW,
        revocations_loaded: true,
        native: Some(&g.native),
        replay: &replay,
    };
    let request = RequestInfo {
        method: "GET",
        path: "/api/x",
        headers: &headers,
    };
    let mut cache = TokenCache::new(4);
    let first = decide(&g.config, k, request, &mut cache);
    if let Outcome::Forward {
        token: forwarded, ..
    } = &first
    {
        let verified = forwarded
            .as_ref()
            .expect("the default rule requires a token");
        assert!(
            verified.jkt.is_none(),
            "a DPoP-bound token passed as a bearer token"
        );
        let presented = authorization["Bearer ".len()..].trim_matches([' ', '\t']);
        if let Err(why) = verify_access_token(g, presented) {
            panic!("forwarded a token the reference refuses: {why}");
        }
    }
    let again = decide(&g.config, k, request, &mut cache);
    assert_eq!(first, again, "the cached decision differs from the first");
});
