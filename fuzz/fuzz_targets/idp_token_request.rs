//! The IDP's parsing of a `POST /oauth2/token` request: the form body (`http::form::parse`) and
//! client authentication (`client_secret_basic` / `client_secret_post`, `client_auth`), with the
//! clients of the IDP's own tests. Input: the `Authorization` value, a newline, the
//! `Content-Type` value, a newline, the body (an empty header line: no such header).
//!
//! Beyond no panic: a failure is a 4xx error of RFC 6749 §5.2 (never 5xx), and a client is
//! authenticated as confidential only when the request really carried its secret (the Basic
//! credentials decoded here again per RFC 7617 and RFC 6749 §2.3.1, with no other code).
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use idp::oauth::client_auth::authenticate;
use idp::oauth::error::OAuthError;
use idp::settings::{Overrides, RawSettings, Settings};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

const CLIENTS: [(&str, &str); 2] = [
    ("demo-client", "demo-client-secret-0123456789abcdef"),
    ("gateway", "gateway-secret-0123456789abcdef0123"),
];

thread_local! {
    static SETTINGS: &'static Settings = Box::leak(Box::new(settings()));
}

fn settings() -> Settings {
    let h = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    let toml = format!(
        r#"
[[clients]]
id = "demo-client"
secret_sha256 = "{}"
scopes = ["read", "write"]
audiences = ["demo-api"]
grant_types = ["authorization_code", "client_credentials", "password", "refresh_token"]
redirect_uris = ["http://127.0.0.1:8080/callback"]
[[clients]]
id = "gateway"
secret_sha256 = "{}"
audiences = ["idp"]
gateway = true
[[clients]]
id = "public-app"
scopes = ["read"]
audiences = ["demo-api"]
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["app.example.native:/callback"]
"#,
        h(CLIENTS[0].1),
        h(CLIENTS[1].1)
    );
    RawSettings::from_toml(&toml)
        .expect("fixture settings")
        .validate(&Overrides::default())
        .expect("fixture settings")
}

/// RFC 6749 §2.3.1 inside RFC 7617: `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

fn rfc6749_error(e: OAuthError) {
    let code = e.code();
    assert!(
        [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "invalid_dpop_proof",
            "use_dpop_nonce",
        ]
        .contains(&code),
        "not an RFC 6749 §5.2 error: {code}"
    );
    let status = e.into_response().status();
    assert!(status.is_client_error(), "status {status} for bad input");
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |b| *b == b'\n');
    let authorization = lines.next().unwrap_or_default();
    let content_type = lines.next().unwrap_or_default();
    let body = lines.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (header::AUTHORIZATION, authorization),
        (header::CONTENT_TYPE, content_type),
    ] {
        // A value hyper would refuse never reaches the handler.
        if let (false, Ok(v)) = (value.is_empty(), HeaderValue::from_bytes(value)) {
            headers.insert(name, v);
        }
    }
    let form = match idp::http::form::parse(&headers, body) {
        Ok(form) => form,
        Err(e) => return rfc6749_error(e),
    };
    let settings = SETTINGS.with(|s| *s);
    match authenticate(settings, &headers, &form) {
        Ok(auth) if auth.confidential => {
            let id = auth.client.id.as_str();
            let basic = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| basic_credentials(v.as_bytes()));
            let carried = match basic {
                Some((basic_id, secret)) => {
                    basic_id == id && CLIENTS.contains(&(id, secret.as_str()))
                }
                None => form.get("client_secret").is_some_and(|s| {
                    form.get("client_id") == Some(id) && CLIENTS.contains(&(id, s))
                }),
            };
            assert!(carried, "client {id} authenticated without its secret");
        }
        Ok(auth) => assert!(
            auth.client.secret.is_none(),
            "a confidential client passed as public"
        ),
        Err(e) => rfc6749_error(e),
    }
});
