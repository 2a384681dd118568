use super::*;
use crate::config::FilterConfig;
use crate::shared_state::MemoryShared;
use serde_json::{Value, json};

const ISSUER: &str = "https://op.example.com/realms/a";

fn provider(discovery: Value) -> Provider {
    let config = json!({"providers": [{"issuer": ISSUER, "audiences": ["api"],
        "algorithms": ["RS256"], "discovery": discovery}]});
    match FilterConfig::from_json(config.to_string().as_bytes()) {
        Ok(mut c) => c.providers.remove(0),
        Err(e) => panic!("{e}"),
    }
}

fn op() -> Provider {
    provider(json!({"cluster": "op", "timeout_ms": 2000,
        "origins": {"https://login.example.com": "login", "http://intranet.example": "plain"}}))
}

fn document(members: Value) -> Vec<u8> {
    let mut doc = json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/certs"),
        "authorization_endpoint": format!("{ISSUER}/auth"), "scopes_supported": ["openid"]});
    if let (Some(d), Some(m)) = (doc.as_object_mut(), members.as_object()) {
        d.extend(m.clone());
    }
    doc.to_string().into_bytes()
}

fn callout(cluster: &str, authority: &str, path: &str) -> Callout {
    Callout {
        cluster: cluster.into(),
        authority: authority.into(),
        path: path.into(),
        timeout_ms: 2_000,
    }
}

#[test]
fn a_matching_issuer_resolves_every_endpoint_through_its_cluster() {
    let body = document(json!({
        "revocation_endpoint": "https://OP.example.com:443/realms/a/revoke",
        "introspection_endpoint": "https://login.example.com/introspect?format=jwt",
        "end_session_endpoint": "http://intranet.example:80/logout"
    }));
    let resolved = resolve(&op(), &body).unwrap();
    assert_eq!(
        resolved.jwks,
        callout("op", "op.example.com", "/realms/a/certs")
    );
    assert_eq!(
        resolved.endpoints,
        DiscoveredEndpoints {
            revocation: Some(callout("op", "op.example.com", "/realms/a/revoke")),
            introspection: Some(callout(
                "login",
                "login.example.com",
                "/introspect?format=jwt"
            )),
            end_session: Some(callout("plain", "intranet.example", "/logout")),
        }
    );
    // Absent members: no endpoint.
    let resolved = resolve(&op(), &document(json!({}))).unwrap();
    assert_eq!(resolved.endpoints, DiscoveredEndpoints::default());
}

#[test]
fn another_issuer_is_refused_exactly() {
    for other in [
        "https://op.example.com/realms/a/",
        "https://OP.example.com/realms/a",
        "https://op.example.com/realms/b",
        "https://evil.example/realms/a",
    ] {
        let error = resolve(&op(), &document(json!({"issuer": other}))).unwrap_err();
        assert_eq!(
            error,
            DiscoveryError::IssuerMismatch {
                expected: ISSUER.into(),
                found: other.into()
            }
        );
        assert!(error.to_string().contains(other), "{error}");
    }
}

#[test]
fn a_url_on_an_origin_no_cluster_serves_is_refused_and_named() {
    for (member, url) in [
        ("jwks_uri", "https://evil.example/certs"),
        ("jwks_uri", "https://op.example.com:8443/realms/a/certs"),
        ("jwks_uri", "http://op.example.com/realms/a/certs"),
        ("revocation_endpoint", "https://login.example.com.evil/x"),
        ("introspection_endpoint", "https://user@op.example.com/x"),
        ("end_session_endpoint", "/relative/logout"),
    ] {
        let error = resolve(&op(), &document(json!({member: url}))).unwrap_err();
        match &error {
            DiscoveryError::Refused {
                member: m, url: u, ..
            } => {
                assert_eq!((*m, u.as_str()), (member, url));
            }
            other => panic!("{member} {url}: {other:?}"),
        }
        assert!(error.to_string().contains(url), "{error}");
    }
}

#[test]
fn http_is_allowed_on_loopback_or_when_the_origin_is_listed() {
    let loopback = |issuer: &str| {
        let config = json!({"providers": [{"issuer": issuer, "audiences": ["api"],
            "algorithms": ["RS256"], "discovery": {"cluster": "op"}}]});
        match FilterConfig::from_json(config.to_string().as_bytes()) {
            Ok(mut c) => c.providers.remove(0),
            Err(e) => panic!("{e}"),
        }
    };
    let p = loopback("http://127.0.0.1:9000");
    let body = json!({"issuer": "http://127.0.0.1:9000", "jwks_uri": "http://127.0.0.1:9000/jwks"});
    let resolved = resolve(&p, body.to_string().as_bytes()).unwrap();
    assert_eq!(
        (
            resolved.jwks.cluster.as_str(),
            resolved.jwks.authority.as_str()
        ),
        ("op", "127.0.0.1:9000")
    );
    // Listed: allowed even off loopback.
    let d = op();
    let d = d.discovery.as_ref().unwrap();
    assert_eq!(
        route(d, "http://intranet.example/x").map(|c| c.cluster),
        Ok("plain".into())
    );
    // Not listed, not loopback: refused even though https on that host is the issuer's.
    assert!(route(d, "http://op.example.com/realms/a/certs").is_err());
}

#[test]
fn default_ports_are_normalised_and_the_query_is_kept() {
    let d = op();
    let d = d.discovery.as_ref().unwrap();
    for url in [
        "https://op.example.com/k?v=2",
        "HTTPS://op.example.com:443/k?v=2",
    ] {
        assert_eq!(
            route(d, url),
            Ok(callout("op", "op.example.com", "/k?v=2")),
            "{url}"
        );
    }
    assert_eq!(
        route(d, "https://login.example.com?x=1"),
        Ok(callout("login", "login.example.com", "/?x=1"))
    );
}

#[test]
fn documents_are_read_strictly() {
    let p = op();
    for (body, why) in [
        (b"[]".to_vec(), "an array"),
        (b"not json".to_vec(), "not JSON"),
        (
            json!({"jwks_uri": "https://op.example.com/c"})
                .to_string()
                .into_bytes(),
            "no issuer",
        ),
        (
            json!({"issuer": 7}).to_string().into_bytes(),
            "issuer not a string",
        ),
        (
            document(json!({"jwks_uri": ["https://op.example.com/c"]})),
            "jwks_uri not a string",
        ),
        (
            document(json!({"revocation_endpoint": null})),
            "null endpoint",
        ),
        (
            format!(r#"{{"issuer":"{ISSUER}","issuer":"{ISSUER}","jwks_uri":"{ISSUER}/c"}}"#)
                .into_bytes(),
            "duplicate member",
        ),
        (vec![b' '; MAX_DOCUMENT_BYTES + 1], "too large"),
    ] {
        assert!(
            matches!(resolve(&p, &body), Err(DiscoveryError::Malformed(_))),
            "{why}"
        );
    }
    assert_eq!(
        resolve(&p, json!({"issuer": ISSUER}).to_string().as_bytes()),
        Err(DiscoveryError::NoJwksUri)
    );
}

#[test]
fn the_shared_document_moves_only_when_it_changes() {
    let shared = MemoryShared::default();
    let share = DiscoveryShare::new(op().discovery.as_ref().unwrap());
    assert_eq!(
        share.document,
        "oauth2gw/discovery/op/realms/a/.well-known/openid-configuration"
    );
    assert_ne!(
        share.jwks.keys,
        JwksShare::new("op", "/realms/a/certs").keys
    );
    assert_eq!(share.read(&shared).0, 0);
    assert_eq!(share.store(&shared, b"{1}"), Ok(Update::Changed(1)));
    assert_eq!(share.store(&shared, b"{1}"), Ok(Update::Unchanged(1)));
    assert_eq!(share.store(&shared, b"{2}"), Ok(Update::Changed(2)));
    assert_eq!(share.read(&shared), (2, b"{2}".to_vec()));
}
