//! Issue 20, defect 4 in the real filter: with two providers, logout revokes a token at its own
//! provider's endpoint with that provider's client, never at the other; a provider without a
//! revocation endpoint cannot log out; and `forward_token: false` keeps query and cookie tokens
//! from the upstream. Defect 6: the upstream gets the normalised path, ambiguous paths are 400.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use host_test::{Envoy, EnvoyOptions, Outcome, Request, Response};
use serde_json::{Value, json};
use std::time::Duration;
use support::{AUDIENCE, Issuer, JWKS_PATH, host};

const ISSUER_A: &str = "https://a.example";
const ISSUER_B: &str = "https://b.example";
const SECRET_A: &str = "secret-of-a-0123456789";
const SECRET_B: &str = "secret-of-b-0123456789";

fn provider(name: &str, issuer: &str) -> Value {
    json!({"name": name, "issuer": issuer, "audiences": [AUDIENCE], "algorithms": ["ES256"],
           "jwks": {"cluster": format!("idp-{name}"), "path": JWKS_PATH, "refresh_seconds": 60}})
}

fn revoke(name: &str, secret: &str) -> Value {
    json!({"cluster": format!("idp-{name}"), "path": format!("/{name}/revoke"),
           "client_id": format!("gateway-{name}"), "client_secret": secret})
}

fn logout() -> Value {
    json!({"resource_server": {"cluster": "resource-server", "path": "/internal/sessions/revoke",
           "secret_header": "x-gateway-secret", "secret": "s3cret-s3cret-s3cret"}})
}

/// An Envoy with providers `a` and `b` (keys answered), configured by `config`.
fn envoy(config: &Value, a: &Issuer, b: &Issuer) -> Envoy {
    let mut envoy = host()
        .envoy(
            EnvoyOptions::new()
                .workers(1)
                .plugin_name("oauth2-gateway")
                .clusters(["idp-a", "idp-b", "resource-server"])
                .plugin_config(config.to_string()),
        )
        .unwrap();
    envoy.advance(Duration::from_secs(1)).unwrap();
    envoy
        .respond_all("idp-a", &Response::json(200, a.jwks().to_string()))
        .unwrap();
    envoy
        .respond_all("idp-b", &Response::json(200, b.jwks().to_string()))
        .unwrap();
    envoy
}

fn token(issuer: &Issuer, iss: &str, envoy: &Envoy) -> String {
    let now = envoy.clock().unix_seconds();
    let mut claims = support::claims(now);
    claims["iss"] = iss.into();
    issuer.token(&claims)
}

#[test]
fn logout_revokes_provider_b_tokens_at_b_and_never_sends_them_to_a() {
    let (a, b) = (Issuer::es256(7, "ka"), Issuer::es256(8, "kb"));
    let mut a_provider = provider("a", ISSUER_A);
    a_provider["revoke"] = revoke("a", SECRET_A);
    let mut b_provider = provider("b", ISSUER_B);
    b_provider["revoke"] = revoke("b", SECRET_B);
    let config = json!({"providers": [a_provider, b_provider], "logout": logout()});
    let mut envoy = envoy(&config, &a, &b);
    let before = envoy.dispatched_http_calls().len();
    let b_token = token(&b, ISSUER_B, &envoy);

    let outcome = envoy
        .request(Request::post("/oauth2/logout").bearer(&b_token))
        .unwrap();
    let Outcome::Paused(stream) = outcome else {
        panic!("logout waits for its calls: {outcome:#?}");
    };
    let calls = envoy.pending_http_calls();
    let clusters: Vec<&str> = calls.iter().map(|c| c.cluster.as_str()).collect();
    assert_eq!(clusters.len(), 2, "{clusters:?}");
    assert!(clusters.contains(&"idp-b") && clusters.contains(&"resource-server"));
    let revoke = calls.iter().find(|c| c.cluster == "idp-b").unwrap();
    assert_eq!(revoke.path(), Some("/b/revoke"));
    let basic = revoke.headers.get("authorization").unwrap();
    let credentials = STANDARD
        .decode(basic.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(credentials).unwrap(),
        format!("gateway-b:{SECRET_B}")
    );
    assert!(String::from_utf8_lossy(&revoke.body).contains(&b_token));
    for call in calls.iter() {
        envoy.respond(call.id, Response::new(200)).unwrap();
    }
    assert_eq!(envoy.worker(0).outcome(stream).status(), Some(200));
    // Nothing of B's ever went to A's cluster.
    let to_a: Vec<_> = envoy.dispatched_http_calls()[before..]
        .iter()
        .filter(|c| c.cluster == "idp-a")
        .cloned()
        .collect();
    assert!(to_a.is_empty(), "{to_a:#?}");

    // And A's token goes to A.
    let a_token = token(&a, ISSUER_A, &envoy);
    let outcome = envoy
        .request(Request::post("/oauth2/logout").bearer(&a_token))
        .unwrap();
    assert!(matches!(outcome, Outcome::Paused(_)), "{outcome:#?}");
    let calls = envoy.pending_http_calls();
    let revoke = calls
        .iter()
        .find(|c| c.cluster.starts_with("idp-"))
        .unwrap();
    assert_eq!(
        (revoke.cluster.as_str(), revoke.path()),
        ("idp-a", Some("/a/revoke"))
    );
}

#[test]
fn logout_is_refused_for_a_provider_without_a_revocation_endpoint() {
    let (a, b) = (Issuer::es256(7, "ka"), Issuer::es256(8, "kb"));
    let mut a_provider = provider("a", ISSUER_A);
    a_provider["revoke"] = revoke("a", SECRET_A);
    let config = json!({"providers": [a_provider, provider("b", ISSUER_B)], "logout": logout()});
    let mut envoy = envoy(&config, &a, &b);
    let before = envoy.dispatched_http_calls().len();
    let b_token = token(&b, ISSUER_B, &envoy);
    let outcome = envoy
        .request(Request::post("/oauth2/logout").bearer(&b_token))
        .unwrap();
    assert_eq!(outcome.status(), Some(400), "{outcome:#?}");
    let body: Value = serde_json::from_str(&outcome.reply().unwrap().body_text()).unwrap();
    assert_eq!(body["error"], "unsupported_token_type");
    assert_eq!(
        envoy.dispatched_http_calls().len(),
        before,
        "no call at all"
    );
    assert_eq!(envoy.metric("oauth2gw.logout_failed"), Some(1));
}

#[test]
fn query_and_cookie_tokens_are_not_forwarded_when_the_provider_says_so() {
    let (a, b) = (Issuer::es256(7, "ka"), Issuer::es256(8, "kb"));
    let mut a_provider = provider("a", ISSUER_A);
    a_provider["forward_token"] = json!(false);
    a_provider["token_sources"] = json!([{"query": "access_token"}, {"cookie": "at"}]);
    let mut envoy = envoy(
        &json!({"providers": [a_provider, provider("b", ISSUER_B)]}),
        &a,
        &b,
    );
    let a_token = token(&a, ISSUER_A, &envoy);

    let outcome = envoy
        .request(Request::get(&format!(
            "/api/hello?x=1&access_token={a_token}&y=2"
        )))
        .unwrap();
    let upstream = outcome.upstream().unwrap_or_else(|| panic!("{outcome:#?}"));
    assert_eq!(upstream.header(":path"), Some("/api/hello?x=1&y=2"));

    let outcome = envoy
        .request(
            Request::get("/api/hello").header("cookie", format!("theme=dark; at={a_token}; z=1")),
        )
        .unwrap();
    let upstream = outcome.upstream().unwrap_or_else(|| panic!("{outcome:#?}"));
    assert_eq!(upstream.header("cookie"), Some("theme=dark; z=1"));
    assert!(
        !format!("{:?}", upstream.request_headers).contains(&a_token),
        "the token reached the upstream"
    );
}

#[test]
fn the_upstream_gets_the_normalised_path_and_ambiguous_paths_are_refused() {
    let (a, b) = (Issuer::es256(7, "ka"), Issuer::es256(8, "kb"));
    let config = json!({"providers": [provider("a", ISSUER_A), provider("b", ISSUER_B)],
        "rules": [{"match": {"prefix": "/public/"}, "action": "allow_missing"},
                  {"match": {"prefix": "/admin/"}, "scopes": ["admin"]}]});
    let mut envoy = envoy(&config, &a, &b);
    let a_token = token(&a, ISSUER_A, &envoy);
    let outcome = envoy
        .request(Request::get("/public/%2e%2e//admin/users").bearer(&a_token))
        .unwrap();
    assert_eq!(outcome.status(), Some(403), "{outcome:#?}");
    let outcome = envoy
        .request(Request::get("/public/%2e%2e/admin/users"))
        .unwrap();
    assert_eq!(outcome.status(), Some(401), "{outcome:#?}");
    let outcome = envoy.request(Request::get("/public//a/./b?q=1")).unwrap();
    let upstream = outcome.upstream().unwrap_or_else(|| panic!("{outcome:#?}"));
    assert_eq!(upstream.header(":path"), Some("/public/a/b?q=1"));
    let outcome = envoy
        .request(Request::get("/public/..%2Fadmin/users"))
        .unwrap();
    assert_eq!(outcome.status(), Some(400), "{outcome:#?}");
    assert!(
        outcome
            .reply()
            .unwrap()
            .header("www-authenticate")
            .unwrap_or("")
            .contains("invalid_request")
    );
}
