//! The per-request decision: rules, scopes, claim headers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;
use filter::admission::gateway::{Knowledge, Outcome, RequestInfo, decide};
use filter::admission::token_cache::TokenCache;
use filter::http::denial::Denial;
use filter::shared_state::MemoryShared;
use filter::shared_state::denylist::Denylist;
use serde_json::json;

fn rules_config() -> filter::config::FilterConfig {
    config_with(json!({
        "rules": [
            {"match": {"exact": "/healthz"}, "action": "bypass"},
            {"match": {"prefix": "/public/"}, "action": "allow_missing"},
            {"match": {"prefix": "/admin/"}, "scopes": ["admin"]},
            {"match": {"prefix": "/write/", "methods": ["POST"]}, "scopes": ["write"], "claims": {"client_id": "demo-client"}}
        ]
    }))
}

fn run(method: &str, path: &str, auth: &[&str]) -> Outcome {
    run_with(&Denylist::default(), method, path, auth)
}

fn run_with(denylist: &Denylist, method: &str, path: &str, auth: &[&str]) -> Outcome {
    let idp = Issuer::es256(1, "k1");
    let keys = idp.key_set();
    let k = Knowledge {
        keys: &[&keys],
        denylist,
        now: NOW,
        revocations_loaded: true,
        native: None,
        replay: &MemoryShared::default(),
    };
    decide(
        &rules_config(),
        k,
        RequestInfo {
            method,
            path,
            headers: &auth
                .iter()
                .map(|a| ("authorization", *a))
                .collect::<Vec<_>>(),
        },
        &mut TokenCache::new(16),
    )
}

fn bearer() -> String {
    format!("Bearer {}", Issuer::es256(1, "k1").token(&claims()))
}

#[test]
fn routes_without_a_rule_require_a_token() {
    assert_eq!(run("GET", "/api/x", &[]), Outcome::Deny(Denial::Missing));
    assert!(matches!(
        run("GET", "/api/x", &[&bearer()]),
        Outcome::Forward { token: Some(_), .. }
    ));
}

#[test]
fn bypass_and_allow_missing() {
    assert!(matches!(
        run("GET", "/healthz", &["Bearer garbage"]),
        Outcome::Forward { token: None, .. }
    ));
    assert!(matches!(
        run("GET", "/public/a", &[]),
        Outcome::Forward { token: None, .. }
    ));
    // a token that is present on an allow_missing route must still be valid
    assert!(matches!(
        run("GET", "/public/a", &["Bearer garbage"]),
        Outcome::Deny(Denial::Malformed(_))
    ));
}

#[test]
fn scopes_and_claims_per_route() {
    assert_eq!(
        run("GET", "/admin/users", &[&bearer()]),
        Outcome::Deny(Denial::InsufficientScope("admin".into()))
    );
    assert!(matches!(
        run("POST", "/write/a", &[&bearer()]),
        Outcome::Forward { .. }
    ));
    // the method matters: GET /write/ falls through to the default rule (token required, no scope)
    assert!(matches!(
        run("GET", "/write/a", &[&bearer()]),
        Outcome::Forward { .. }
    ));
    let other = Issuer::es256(1, "k1").token(&{
        let mut c = claims();
        c["client_id"] = "other".into();
        c
    });
    assert_eq!(
        run("POST", "/write/a", &[&format!("Bearer {other}")]),
        Outcome::Deny(Denial::ClaimMismatch("client_id".into()))
    );
}

#[test]
fn forwarded_requests_carry_claim_headers() {
    let outcome = run("GET", "/api/x", &[&bearer()]);
    let Outcome::Forward { remove_headers, .. } = &outcome else {
        panic!("expected forward");
    };
    assert!(remove_headers.is_empty());
    let headers = outcome.forwarded_headers();
    // the path was already normal: it is not rewritten
    assert!(!headers.iter().any(|(k, _)| *k == ":path"), "{headers:?}");
    let get = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    assert_eq!(get("x-auth-sub"), Some("alice"));
    assert_eq!(get("x-auth-client-id"), Some("demo-client"));
    assert_eq!(get("x-auth-scope"), Some("read write"));
    assert_eq!(get("x-auth-sid"), Some("sid-1"));
    assert_eq!(get("x-auth-issuer"), Some(ISSUER));
}

#[test]
fn two_authorization_headers_are_a_bad_request() {
    let b = bearer();
    assert_eq!(
        run("GET", "/api/x", &[&b, &b]),
        Outcome::Deny(Denial::MultipleTokens)
    );
}

#[test]
fn revoked_tokens_and_ended_sessions_are_refused() {
    let mut by_jti = Denylist::default();
    by_jti.revoke_jti("jti-1", NOW + 300);
    assert_eq!(
        run_with(&by_jti, "GET", "/api/x", &[&bearer()]),
        Outcome::Deny(Denial::Revoked)
    );
    let mut by_sid = Denylist::default();
    by_sid.revoke_sid("sid-1", NOW + 300);
    assert_eq!(
        run_with(&by_sid, "GET", "/api/x", &[&bearer()]),
        Outcome::Deny(Denial::Revoked)
    );
    let mut other = Denylist::default();
    other.revoke_jti("jti-2", NOW + 300);
    assert!(matches!(
        run_with(&other, "GET", "/api/x", &[&bearer()]),
        Outcome::Forward { .. }
    ));
}

#[test]
fn the_cache_serves_a_token_seen_before_but_never_a_revoked_or_expired_one() {
    let idp = Issuer::es256(1, "k1");
    let keys = idp.key_set();
    let sets = [&keys];
    let config = rules_config();
    let mut cache = TokenCache::new(16);
    let b = bearer();
    let auth = [b.as_str()];
    let headers = [("authorization", auth[0])];
    let request = RequestInfo {
        method: "GET",
        path: "/api/x",
        headers: &headers,
    };
    let empty = Denylist::default();
    let replay = MemoryShared::default();
    let at = |now, denylist| Knowledge {
        keys: &sets,
        denylist,
        now,
        revocations_loaded: true,
        native: None,
        replay: &replay,
    };
    assert!(matches!(
        decide(&config, at(NOW, &empty), request, &mut cache),
        Outcome::Forward { .. }
    ));
    assert_eq!(cache.take_stats(), (0, 1));
    // Seen before: served from the cache, even with no keys at hand.
    let no_keys = Knowledge {
        keys: &[],
        denylist: &empty,
        now: NOW,
        revocations_loaded: true,
        native: None,
        replay: &MemoryShared::default(),
    };
    assert!(matches!(
        decide(&config, no_keys, request, &mut cache),
        Outcome::Forward { .. }
    ));
    assert_eq!(cache.take_stats(), (1, 0));
    // Revoked after it was cached: refused.
    let mut revoked = Denylist::default();
    revoked.revoke_jti("jti-1", NOW + 300);
    assert_eq!(
        decide(&config, at(NOW, &revoked), request, &mut cache),
        Outcome::Deny(Denial::Revoked)
    );
    // Expired (exp NOW+300, leeway 30) after it was cached: refused as expired.
    assert_eq!(
        decide(&config, at(NOW + 331, &empty), request, &mut cache),
        Outcome::Deny(Denial::Expired)
    );
}

#[test]
fn tokens_from_other_places_when_the_provider_accepts_them() {
    let idp = Issuer::es256(1, "k1");
    let keys = idp.key_set();
    let token = idp.token(&claims());
    let config = config_with(json!({"providers": [{
        "token_sources": [{"header": "authorization", "prefix": "Bearer "}, {"cookie": "at"}, {"header": "x-token"}],
        "forward_token": false
    }]}));
    let with_query = config_with(json!({"providers": [{
        "token_sources": [{"query": "access_token"}], "forward_token": false
    }]}));
    let denylist = Denylist::default();
    let k = Knowledge {
        keys: &[&keys],
        denylist: &denylist,
        now: NOW,
        revocations_loaded: true,
        native: None,
        replay: &MemoryShared::default(),
    };
    let mut cache = TokenCache::new(0);
    let cookie = format!("theme=dark; at={token}");
    let cookie_headers = [("cookie", cookie.as_str())];
    let token_headers = [("x-token", token.as_str())];
    let request = |path, headers| RequestInfo {
        method: "GET",
        path,
        headers,
    };
    // forward_token: false keeps the token from the upstream wherever it was (issue 20, defect
    // 4): the cookie is cut out of the cookies, the other cookies stay
    let Outcome::Forward {
        headers,
        remove_headers,
        ..
    } = decide(&config, k, request("/api/x", &cookie_headers), &mut cache)
    else {
        panic!("expected forward");
    };
    assert_eq!(remove_headers, ["cookie"]);
    let cookie_out: Vec<_> = headers.iter().filter(|(h, _)| h == "cookie").collect();
    assert_eq!(
        cookie_out,
        [&("cookie".to_owned(), "theme=dark".to_owned())]
    );
    let alone = format!("at={token}");
    let alone_headers = [("cookie", alone.as_str())];
    let Outcome::Forward {
        headers,
        remove_headers,
        ..
    } = decide(&config, k, request("/api/x", &alone_headers), &mut cache)
    else {
        panic!("expected forward");
    };
    assert_eq!(remove_headers, ["cookie"]);
    assert!(!headers.iter().any(|(h, _)| h == "cookie"), "{headers:?}");
    let out = decide(&config, k, request("/api/x", &token_headers), &mut cache);
    assert!(
        matches!(&out, Outcome::Forward { remove_headers, .. } if remove_headers == &["x-token"]),
        "{out:?}"
    );
    // the query token is cut out of the forwarded :path, the other parameters stay
    let path = format!("/api/x?a=1&access_token={token}&b=2");
    let Outcome::Forward {
        headers,
        remove_headers,
        ..
    } = decide(&with_query, k, request(&path, &[]), &mut cache)
    else {
        panic!("expected forward");
    };
    assert!(remove_headers.is_empty());
    let forwarded: Vec<_> = headers.iter().filter(|(h, _)| h == ":path").collect();
    assert_eq!(
        forwarded,
        [&(":path".to_owned(), "/api/x?a=1&b=2".to_owned())]
    );
    // not configured: the query string is not read
    let path = format!("/api/x?access_token={token}");
    assert_eq!(
        decide(&config, k, request(&path, &[]), &mut cache),
        Outcome::Deny(Denial::Missing)
    );
    // one token in two places
    let auth = format!("Bearer {token}");
    let both = [
        ("authorization", auth.as_str()),
        ("cookie", cookie.as_str()),
    ];
    assert_eq!(
        decide(&config, k, request("/api/x", &both), &mut cache),
        Outcome::Deny(Denial::MultipleTokens)
    );
}

/// Until the revocation feed was read up to date, a token not known to be revoked cannot be
/// judged: 503 (fail closed, as without keys). What needs no token, invalid tokens and tokens
/// already known to be revoked are answered as always; a logout goes ahead.
#[test]
fn tokens_are_refused_with_503_until_the_revocations_are_loaded() {
    let idp = Issuer::es256(1, "k1");
    let keys = idp.key_set();
    let config = rules_config();
    let replay = MemoryShared::default();
    let empty = Denylist::default();
    let mut revoked = Denylist::default();
    revoked.revoke_jti("jti-1", NOW + 300);
    let sets = [&keys];
    let k = |denylist, revocations_loaded| Knowledge {
        keys: &sets,
        denylist,
        now: NOW,
        revocations_loaded,
        native: None,
        replay: &replay,
    };
    let b = bearer();
    let mut cache = TokenCache::new(16);
    let mut decide_at = |k, path, auth: &[&str]| {
        let headers: Vec<_> = auth.iter().map(|a| ("authorization", *a)).collect();
        let request = RequestInfo {
            method: "GET",
            path,
            headers: &headers,
        };
        decide(&config, k, request, &mut cache)
    };
    assert_eq!(
        decide_at(k(&empty, false), "/api/x", &[&b]),
        Outcome::Deny(Denial::RevocationsNotLoaded)
    );
    // Also when the token was verified and cached before (the cache is no way around it).
    assert!(matches!(
        decide_at(k(&empty, true), "/api/x", &[&b]),
        Outcome::Forward { .. }
    ));
    assert_eq!(
        decide_at(k(&empty, false), "/api/x", &[&b]),
        Outcome::Deny(Denial::RevocationsNotLoaded)
    );
    // Known to be revoked: that is the answer.
    assert_eq!(
        decide_at(k(&revoked, false), "/api/x", &[&b]),
        Outcome::Deny(Denial::Revoked)
    );
    // Invalid tokens and missing ones are judged without the list.
    let garbage = decide_at(k(&empty, false), "/api/x", &["Bearer not.a.token"]);
    assert!(
        matches!(garbage, Outcome::Deny(Denial::Malformed(_))),
        "{garbage:?}"
    );
    assert_eq!(
        decide_at(k(&empty, false), "/api/x", &[]),
        Outcome::Deny(Denial::Missing)
    );
    // Routes that need no token pass.
    for path in ["/healthz", "/public/page"] {
        assert!(
            matches!(
                decide_at(k(&empty, false), path, &[]),
                Outcome::Forward { token: None, .. }
            ),
            "{path}"
        );
    }
    // A logout goes ahead: it only revokes.
    let headers = [("authorization", b.as_str())];
    let subject = filter::admission::gateway::logout_subject(
        &config,
        k(&empty, false),
        "/oauth2/logout",
        &headers,
    );
    assert!(matches!(subject, Ok((_, _, false))), "{subject:?}");
}
