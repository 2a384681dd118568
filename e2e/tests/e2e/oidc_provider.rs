//! node `oidc-provider` on its own (no Envoy): the third-party OP the gateway will be put in front
//! of behaves as `e2e::oidc_provider` says — discovery, ES256 and RS256 JWT access tokens, opaque
//! tokens introspected and revoked (and counted), a dev login whose JWT access token carries
//! `sid`, and RP-initiated logout that POSTs a back-channel logout token to a loopback listener.
//!
//! `scripts/test` runs `npm ci` in e2e/oidc-provider first; by hand:
//! `(cd e2e/oidc-provider && npm ci) && cargo test -p e2e --test e2e oidc_provider`.

use e2e::oidc_provider::{
    OidcProvider, OpOptions, RESOURCE_ES256, RESOURCE_OPAQUE, RESOURCE_RS256, decode_jwt,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

fn start(options: OpOptions) -> OidcProvider {
    OidcProvider::start(options).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn discovery_names_the_issuer_and_the_endpoints() {
    let _slot = crate::slot();
    let op = start(OpOptions::default());
    let res = e2e::client::get(&op.discovery_url(), &[]).unwrap();
    assert_eq!(res.status, 200, "{}", res.body);
    let doc = res.json().unwrap();
    assert_eq!(doc["issuer"], op.issuer());
    assert_eq!(op.issuer(), format!("http://127.0.0.1:{}", op.port()));
    assert_eq!(doc["jwks_uri"], op.jwks_url());
    assert_eq!(doc["revocation_endpoint"], op.revocation_url());
    assert_eq!(doc["introspection_endpoint"], op.introspection_url());
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{}/session/end", op.issuer())
    );
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
    let dpop_algs = doc["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(dpop_algs.iter().any(|a| a == "ES256"), "{doc}");

    // the JWKS has one RSA and one P-256 signing key
    let jwks = e2e::client::get(&op.jwks_url(), &[])
        .unwrap()
        .json()
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let algs: Vec<&str> = keys.iter().filter_map(|k| k["alg"].as_str()).collect();
    assert!(algs.contains(&"RS256") && algs.contains(&"ES256"), "{jwks}");
    assert!(
        keys.iter().all(|k| k.get("d").is_none()),
        "private key material in the JWKS: {jwks}"
    );
}

/// The JWKS key a JWT names in its header (`kid`).
fn jwk_for(op: &OidcProvider, header: &serde_json::Value) -> serde_json::Value {
    let jwks = e2e::client::get(&op.jwks_url(), &[])
        .unwrap()
        .json()
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .cloned()
        .unwrap_or_else(|| panic!("kid {} not in {jwks}", header["kid"]))
}

#[test]
fn client_credentials_give_es256_and_rs256_jwt_access_tokens() {
    let _slot = crate::slot();
    let op = start(OpOptions {
        access_token_ttl: 120,
        ..OpOptions::default()
    });
    for (resource, alg, kty) in [
        (RESOURCE_ES256, "ES256", "EC"),
        (RESOURCE_RS256, "RS256", "RSA"),
    ] {
        let token = op.client_credentials(resource).unwrap();
        let (header, payload) = decode_jwt(&token).unwrap();
        assert_eq!(header["alg"], alg, "{header}");
        assert_eq!(header["typ"], "at+jwt", "{header}");
        assert_eq!(jwk_for(&op, &header)["kty"], kty);
        assert_eq!(payload["aud"], resource, "{payload}");
        assert_eq!(payload["iss"], op.issuer(), "{payload}");
        assert_eq!(payload["client_id"], "service", "{payload}");
        assert_eq!(payload["sub"], "service", "{payload}");
        assert_eq!(payload["scope"], "api", "{payload}");
        let lifetime = payload["exp"].as_u64().unwrap() - payload["iat"].as_u64().unwrap();
        assert_eq!(lifetime, 120, "access_token_ttl: {payload}");
        assert!(
            payload.get("sid").is_none(),
            "a service token has no session: {payload}"
        );

        // oidc-provider refuses to introspect its JWT access tokens
        let err = op.introspect(&token).unwrap_err();
        assert!(err.contains("unsupported_token_type"), "{err}");
    }
    // no resource named: the default resource (ES256)
    let res = e2e::client::post_form(
        &op.token_url(),
        &[(
            "authorization",
            &format!(
                "Basic {}",
                base64_std(&format!("service:{}", e2e::oidc_provider::SERVICE_SECRET))
            ),
        )],
        &[("grant_type", "client_credentials"), ("scope", "api")],
    )
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.body);
    let token = res.json().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (header, payload) = decode_jwt(&token).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(payload["aud"], RESOURCE_ES256);

    // an unknown resource is refused
    let err = op.client_credentials("urn:gateway:unknown").unwrap_err();
    assert!(err.contains("invalid_target"), "{err}");
}

fn base64_std(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn opaque_token_is_introspected_revoked_and_counted() {
    let _slot = crate::slot();
    let op = start(OpOptions::default());
    assert_eq!(op.counters().unwrap(), (0, 0));
    let token = op.client_credentials(RESOURCE_OPAQUE).unwrap();
    assert!(!token.contains('.'), "not opaque: {token}");

    let active = op.introspect(&token).unwrap();
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["aud"], RESOURCE_OPAQUE, "{active}");
    assert_eq!(active["client_id"], "service", "{active}");
    assert_eq!(active["scope"], "api", "{active}");
    assert_eq!(active["iss"], op.issuer(), "{active}");
    assert_eq!(active["token_type"], "Bearer", "{active}");
    assert_eq!(op.counters().unwrap(), (1, 0));

    // RFC 9701: the same answer as a signed JWT
    let jwt = op.introspect_jwt(&token).unwrap();
    let (header, payload) = decode_jwt(&jwt).unwrap();
    assert_eq!(header["typ"], "token-introspection+jwt", "{header}");
    assert_eq!(payload["iss"], op.issuer(), "{payload}");
    assert_eq!(payload["token_introspection"]["active"], true, "{payload}");
    assert_eq!(payload["token_introspection"]["aud"], RESOURCE_OPAQUE);
    assert_eq!(op.counters().unwrap(), (2, 0));

    // the failure switch: 503 until switched off, counted all the same
    op.set_introspection_failing(true).unwrap();
    let err = op.introspect(&token).unwrap_err();
    assert!(err.starts_with("introspection: 503"), "{err}");
    op.set_introspection_failing(false).unwrap();
    assert_eq!(op.counters().unwrap(), (3, 0));

    op.revoke(&token, Some("access_token")).unwrap();
    assert_eq!(op.counters().unwrap(), (3, 1));
    let inactive = op.introspect(&token).unwrap();
    assert_eq!(inactive, serde_json::json!({"active": false}));
    assert_eq!(op.counters().unwrap(), (4, 1));

    // revoking a JWT access token is refused (RFC 7009 §2.2.1 unsupported_token_type)
    let jwt_token = op.client_credentials(RESOURCE_ES256).unwrap();
    let err = op.revoke(&jwt_token, None).unwrap_err();
    assert!(err.contains("unsupported_token_type"), "{err}");
    assert_eq!(op.counters().unwrap(), (4, 2));
}

#[test]
fn user_login_gives_a_jwt_access_token_with_sid() {
    let _slot = crate::slot();
    let op = start(OpOptions::default());
    let tokens = op.login("alice", RESOURCE_ES256).unwrap();
    assert!(!tokens.sid.is_empty());

    let (header, payload) = decode_jwt(&tokens.access_token).unwrap();
    assert_eq!(header["alg"], "ES256", "{header}");
    assert_eq!(header["typ"], "at+jwt", "{header}");
    assert_eq!(payload["aud"], RESOURCE_ES256, "{payload}");
    assert_eq!(payload["sub"], "alice", "{payload}");
    assert_eq!(payload["client_id"], "webapp", "{payload}");
    assert_eq!(payload["iss"], op.issuer(), "{payload}");
    assert_eq!(payload["sid"], tokens.sid.as_str(), "{payload}");
    let scopes: Vec<&str> = payload["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&"api"), "{payload}");

    let (id_header, id_claims) = decode_jwt(&tokens.id_token).unwrap();
    assert_eq!(id_header["alg"], "RS256", "{id_header}");
    assert_eq!(id_claims["aud"], "webapp", "{id_claims}");
    assert_eq!(id_claims["sub"], "alice", "{id_claims}");

    // the refresh token is introspectable (opaque) and gives a new access token for the same session
    let rt = op.introspect(&tokens.refresh_token).unwrap();
    assert_eq!(rt["active"], true, "{rt}");
    assert_eq!(rt["sid"], tokens.sid.as_str(), "{rt}");
    let refreshed = op.refresh(&tokens.refresh_token).unwrap();
    let (_, payload) = decode_jwt(refreshed["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(payload["sid"], tokens.sid.as_str(), "{payload}");
    assert_eq!(payload["aud"], RESOURCE_ES256, "{payload}");

    // an opaque user token carries sid in its introspection
    let opaque = op.login("bob", RESOURCE_OPAQUE).unwrap();
    let info = op.introspect(&opaque.access_token).unwrap();
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], "bob", "{info}");
    assert_eq!(info["sid"], opaque.sid.as_str(), "{info}");
}

/// A loopback HTTP listener that answers 200 to every request and hands over each request's body.
fn logout_receiver() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/backchannel-logout",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let mut length = 0usize;
            let mut line = String::new();
            // oidc-provider's SSRF guard connects, then drops the socket: not a request
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                continue;
            }
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
            );
            let body = String::from_utf8_lossy(&body).into_owned();
            if tx.send(format!("{}\n{body}", request_line.trim())).is_err() {
                break;
            }
        }
    });
    (url, rx)
}

#[test]
fn end_session_sends_a_backchannel_logout_token() {
    let _slot = crate::slot();
    let (receiver_url, requests) = logout_receiver();
    let op = start(OpOptions {
        backchannel_logout_uri: Some(receiver_url.clone()),
        ..OpOptions::default()
    });
    let tokens = op.login("carol", RESOURCE_ES256).unwrap();
    op.end_session(&tokens).unwrap();

    // the OP waits for the back-channel call before it answers end_session: it is there already
    let request = requests
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| {
            panic!(
                "no back-channel logout at {receiver_url}; OP log:\n{}",
                op.log_text()
            )
        });
    let (request_line, body) = request.split_once('\n').unwrap();
    assert_eq!(request_line, "POST /backchannel-logout HTTP/1.1");
    let form: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap();
    let logout_token = form
        .iter()
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no logout_token in {body}"));
    let (header, claims) = decode_jwt(logout_token).unwrap();
    assert_eq!(header["typ"], "logout+jwt", "{header}");
    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(claims["iss"], op.issuer(), "{claims}");
    assert_eq!(claims["aud"], "webapp", "{claims}");
    assert_eq!(claims["sub"], "carol", "{claims}");
    assert_eq!(claims["sid"], tokens.sid.as_str(), "{claims}");
    assert!(
        claims["events"]
            .get("http://schemas.openid.net/event/backchannel-logout")
            .is_some_and(serde_json::Value::is_object),
        "{claims}"
    );
    assert!(claims.get("nonce").is_none(), "{claims}");
    // the JWT access token's sid is the one the logout names
    let (_, at) = decode_jwt(&tokens.access_token).unwrap();
    assert_eq!(at["sid"], claims["sid"]);
    assert!(
        op.log_text().contains(&format!(
            "OP_BACKCHANNEL ok client=webapp sub=carol sid={}",
            tokens.sid
        )),
        "{}",
        op.log_text()
    );

    // the ID token names the session when the client takes back-channel logout
    let (_, id_claims) = decode_jwt(&tokens.id_token).unwrap();
    assert_eq!(id_claims["sid"], claims["sid"]);
    // an offline_access grant outlives the logout (oidc-provider's default `expiresWithSession`:
    // tokens expire with the session only without offline_access): the refresh token stays active
    let rt = op.introspect(&tokens.refresh_token).unwrap();
    assert_eq!(rt["active"], true, "{rt}");
    // logging out again needs a new session: the old one is gone
    let err = op.end_session(&tokens).unwrap_err();
    assert!(err.contains("no session at the OP"), "{err}");
    // and there is no second call
    assert!(requests.recv_timeout(Duration::from_millis(300)).is_err());
}
