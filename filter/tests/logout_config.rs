//! Issue 20, defect 4: logout revokes a token at its own provider, with that provider's client, or
//! is refused; the older single `logout.revoke` + `idp_client` still works where it is not
//! ambiguous.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use filter::config::{ConfigError, FilterConfig};
use filter::logout::{LogoutMachine, LogoutSubject, logout_plan};
use filter::shared_state::discovery::DiscoveredEndpoints;
use serde_json::{Value, json};

const SECRET_A: &str = "secret-of-a-0123456789";
const SECRET_B: &str = "secret-of-b-0123456789";

fn provider(name: &str, revoke: Option<Value>) -> Value {
    let mut p = json!({
        "name": name, "issuer": format!("https://{name}.example"), "audiences": ["api"],
        "algorithms": ["ES256"], "jwks": {"cluster": name, "path": "/jwks"}
    });
    if let Some(r) = revoke {
        p["revoke"] = r;
    }
    p
}

fn own_revoke(cluster: &str, secret: &str) -> Value {
    json!({"cluster": cluster, "path": "/revoke", "client_id": format!("gw-{cluster}"),
           "client_secret": secret})
}

fn logout(revoke: Option<Value>) -> Value {
    let mut l = json!({"resource_server": {"cluster": "rs", "path": "/internal/sessions/revoke",
        "secret_header": "x-gateway-secret", "secret": "rs-secret-0123456789"}});
    if let Some(r) = revoke {
        l["revoke"] = r;
    }
    l
}

fn parse(config: Value) -> Result<FilterConfig, ConfigError> {
    FilterConfig::from_json(config.to_string().as_bytes())
}

fn idp_client() -> Value {
    json!({"client_id": "gateway", "client_secret": "gateway-secret-0123456789"})
}

/// The cluster and decoded Basic credentials logout would use for a token of `provider`.
fn revoke_call(config: &FilterConfig, provider: usize) -> (String, String) {
    let discovered = DiscoveredEndpoints::default();
    let (logout, revocation) = logout_plan(config, provider, &discovered).unwrap();
    let subject = LogoutSubject {
        token: "a.b.c",
        sid: None,
        sub: None,
        already_revoked: false,
    };
    let (_, calls) = LogoutMachine::start(logout, revocation, subject);
    let (_, revoke) = &calls[0];
    let auth = &revoke
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1;
    let basic = STANDARD
        .decode(auth.strip_prefix("Basic ").unwrap())
        .unwrap();
    (revoke.cluster.clone(), String::from_utf8(basic).unwrap())
}

#[test]
fn each_provider_revokes_at_its_own_endpoint_with_its_own_client() {
    let config = parse(json!({
        "providers": [provider("a", Some(own_revoke("a", SECRET_A))),
                      provider("b", Some(own_revoke("b", SECRET_B)))],
        "logout": logout(None)
    }))
    .unwrap();
    assert_eq!(
        revoke_call(&config, 0),
        ("a".to_owned(), format!("gw-a:{SECRET_A}"))
    );
    assert_eq!(
        revoke_call(&config, 1),
        ("b".to_owned(), format!("gw-b:{SECRET_B}"))
    );
}

#[test]
fn a_provider_without_a_revocation_endpoint_cannot_log_out() {
    let config = parse(json!({
        "providers": [provider("a", Some(own_revoke("a", SECRET_A))), provider("b", None)],
        "logout": logout(None)
    }))
    .unwrap();
    assert_eq!(revoke_call(&config, 0).0, "a");
    let refused = logout_plan(&config, 1, &DiscoveredEndpoints::default()).unwrap_err();
    assert_eq!(refused.status, 400);
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body["error"], "unsupported_token_type");
    assert_eq!(body["status"], "logout_refused");
}

#[test]
fn the_older_single_revoke_applies_to_the_only_provider() {
    let config = parse(json!({
        "providers": [provider("a", None)],
        "idp_client": idp_client(),
        "logout": logout(Some(json!({"cluster": "idp", "path": "/oauth2/revoke"})))
    }))
    .unwrap();
    assert_eq!(
        revoke_call(&config, 0),
        (
            "idp".to_owned(),
            "gateway:gateway-secret-0123456789".to_owned()
        )
    );
}

#[test]
fn the_older_single_revoke_applies_to_the_provider_it_names() {
    let config = parse(json!({
        "providers": [provider("a", None), provider("b", Some(own_revoke("b", SECRET_B)))],
        "idp_client": idp_client(),
        "logout": logout(Some(json!({"cluster": "idp", "path": "/oauth2/revoke", "provider": "a"})))
    }))
    .unwrap();
    assert_eq!(revoke_call(&config, 0).0, "idp");
    assert_eq!(revoke_call(&config, 1).0, "b");
}

#[test]
fn ambiguous_or_useless_revocation_configs_are_refused() {
    let single = || json!({"cluster": "idp", "path": "/oauth2/revoke"});
    let cases = [
        // several providers, and the single endpoint does not say whose it is
        (
            json!({"providers": [provider("a", None), provider("b", None)],
                   "idp_client": idp_client(), "logout": logout(Some(single()))}),
            "logout.revoke",
        ),
        // the named provider does not exist
        (
            json!({"providers": [provider("a", None)], "idp_client": idp_client(),
                   "logout": logout(Some(json!({"cluster": "idp", "path": "/r", "provider": "z"})))}),
            "logout.revoke.provider",
        ),
        // both the single endpoint and the provider's own
        (
            json!({"providers": [provider("a", Some(own_revoke("a", SECRET_A)))],
                   "idp_client": idp_client(), "logout": logout(Some(single()))}),
            "logout.revoke",
        ),
        // the single endpoint without the client it authenticates as
        (
            json!({"providers": [provider("a", None)], "logout": logout(Some(single()))}),
            "idp_client",
        ),
        // logout that can revoke nothing
        (
            json!({"providers": [provider("a", None)], "logout": logout(None)}),
            "logout",
        ),
        // a revocation endpoint without logout
        (
            json!({"providers": [provider("a", Some(own_revoke("a", SECRET_A)))]}),
            "providers[0].revoke",
        ),
        // a provider's client secret too short
        (
            json!({"providers": [provider("a", Some(own_revoke("a", "short")))],
                   "logout": logout(None)}),
            "providers[0].revoke.client_secret",
        ),
    ];
    for (config, field) in cases {
        let e = parse(config.clone()).unwrap_err();
        assert_eq!(e.field, field, "{config}: {e}");
    }
}
