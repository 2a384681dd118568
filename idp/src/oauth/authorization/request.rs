//! Checking an authorization request (RFC 6749 §4.1.1, §4.2.1, RFC 7636 §4.3, OIDC Core
//! §3.1.2.1).

use super::{AuthoriseError, Prompt, ResponseType, ValidRequest};
use crate::oauth::dpop::jwk::is_thumbprint;
use crate::oauth::error::OAuthError;
use crate::oauth::grants::grant_scopes;
use crate::oauth::pkce::{self, Method};
use crate::settings::{Client, GrantType, Settings};
use std::collections::BTreeMap;

/// Exact match of a registered redirect URI, except that the port of an `http` loopback IP
/// literal may differ (RFC 8252 §7.3: native apps listen on an ephemeral port).
pub fn redirect_uri_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback_ip = |u: &url::Url| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    if r.scheme() != "http" || !loopback_ip(&r) || p.scheme() != "http" {
        return false;
    }
    r.host() == p.host()
        && r.path() == p.path()
        && r.query() == p.query()
        && r.username() == p.username()
        && r.password() == p.password()
        && p.fragment().is_none()
}

/// Checks an authorization request (`response_type=code` or `token`), given as its query or
/// form parameters.
pub fn validate(
    settings: &Settings,
    params: &[(String, String)],
) -> Result<ValidRequest, AuthoriseError> {
    let mut map: BTreeMap<&str, &str> = BTreeMap::new();
    let mut repeated: Vec<&str> = Vec::new();
    for (k, v) in params {
        if v.is_empty() {
            continue;
        }
        if map.insert(k.as_str(), v.as_str()).is_some() {
            repeated.push(k.as_str());
        }
    }
    // First what decides whether we may redirect at all.
    if repeated.contains(&"client_id") || repeated.contains(&"redirect_uri") {
        return Err(AuthoriseError::NoRedirect(
            "client_id or redirect_uri is repeated".into(),
        ));
    }
    let client_id = map
        .get("client_id")
        .ok_or_else(|| AuthoriseError::NoRedirect("client_id is missing".into()))?;
    let client = settings
        .client(client_id)
        .ok_or_else(|| AuthoriseError::NoRedirect("unknown client".into()))?;
    let redirect_uri = map.get("redirect_uri").ok_or_else(|| {
        AuthoriseError::NoRedirect("redirect_uri is missing (it is required here)".into())
    })?;
    if !client
        .redirect_uris
        .iter()
        .any(|r| redirect_uri_matches(r, redirect_uri))
    {
        return Err(AuthoriseError::NoRedirect(
            "redirect_uri is not registered for this client".into(),
        ));
    }
    let state = if repeated.contains(&"state") {
        None
    } else {
        map.get("state").map(|s| (*s).to_owned())
    };
    let response_type = match map.get("response_type") {
        Some(&"code") => Some(ResponseType::Code),
        Some(&"token") => Some(ResponseType::Token),
        _ => None,
    };
    let fail = |error: &'static str, description: &str| AuthoriseError::Redirect {
        redirect_uri: (*redirect_uri).to_owned(),
        state: state.clone(),
        error,
        description: description.to_owned(),
        fragment: response_type == Some(ResponseType::Token),
    };
    if let Some(k) = repeated.first() {
        return Err(fail(
            "invalid_request",
            &format!("parameter {k:?} is repeated"),
        ));
    }
    let response_type = match (map.get("response_type"), response_type) {
        (None, _) => return Err(fail("invalid_request", "response_type is missing")),
        (Some(_), Some(t)) => t,
        (Some(_), None) => {
            return Err(fail(
                "unsupported_response_type",
                "response_type must be code or token",
            ));
        }
    };
    if map.contains_key("request") || map.contains_key("request_uri") {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    let (grant, grant_name) = match response_type {
        ResponseType::Code => (GrantType::AuthorizationCode, "the authorization code grant"),
        ResponseType::Token => (GrantType::Implicit, "the implicit grant"),
    };
    if !client.allows(grant) {
        return Err(fail(
            "unauthorized_client",
            &format!("this client may not use {grant_name}"),
        ));
    }
    let scopes = grant_scopes(client, map.get("scope").copied()).map_err(|e| match e {
        OAuthError::InvalidScope(d) => fail("invalid_scope", &d),
        other => fail("invalid_request", &other.to_string()),
    })?;
    let prompt =
        parse_prompt(map.get("prompt").copied()).map_err(|d| fail("invalid_request", d))?;
    let max_age = match map.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| fail("invalid_request", "max_age must be a number of seconds"))?,
        ),
    };
    let dpop_jkt = match (map.get("dpop_jkt"), response_type) {
        (None, _) => None,
        (Some(_), ResponseType::Token) => {
            return Err(fail(
                "invalid_request",
                "dpop_jkt needs response_type=code (an implicit token cannot be DPoP-bound)",
            ));
        }
        (Some(jkt), ResponseType::Code) if is_thumbprint(jkt) => Some((*jkt).to_owned()),
        (Some(_), ResponseType::Code) => {
            return Err(fail(
                "invalid_request",
                "dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 7638)",
            ));
        }
    };
    let code_challenge = match response_type {
        ResponseType::Code => check_pkce(
            client,
            map.get("code_challenge").copied(),
            map.get("code_challenge_method").copied(),
        )
        .map_err(|d| fail("invalid_request", d))?,
        ResponseType::Token => {
            // The token goes straight to the user agent: `state` is the only CSRF defence.
            if state.is_none() {
                return Err(fail(
                    "invalid_request",
                    "state is required with response_type=token",
                ));
            }
            None
        }
    };
    Ok(ValidRequest {
        response_type,
        client_id: client.id.clone(),
        redirect_uri: (*redirect_uri).to_owned(),
        scopes,
        state,
        code_challenge,
        nonce: map.get("nonce").map(|n| (*n).to_owned()),
        prompt,
        max_age,
        dpop_jkt,
    })
}

fn parse_prompt(value: Option<&str>) -> Result<Prompt, &'static str> {
    let mut prompt = Prompt::default();
    for p in value.unwrap_or("").split(' ').filter(|p| !p.is_empty()) {
        match p {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // `select_account` needs an account chooser this IDP does not have: one account
            // per browser, so it asks for nothing more.
            "select_account" => {}
            _ => return Err("prompt has an unknown value"),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err("prompt=none cannot be combined with other values");
    }
    Ok(prompt)
}

/// RFC 7636 §4.3 with RFC 9700 §2.1.1: S256 is always accepted; `plain` (the default method when
/// none is named) only for clients configured for it; public clients must send a challenge.
fn check_pkce(
    client: &Client,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<(Method, String)>, &'static str> {
    let Some(challenge) = challenge else {
        if method.is_some() {
            return Err("code_challenge_method without code_challenge");
        }
        if client.require_pkce {
            return Err("PKCE is required: send code_challenge with code_challenge_method=S256");
        }
        return Ok(None);
    };
    let method = match method {
        None => Method::Plain,
        Some(m) => Method::parse(m).ok_or("code_challenge_method must be S256")?,
    };
    if method == Method::Plain && !client.allow_pkce_plain {
        return Err("code_challenge_method must be S256");
    }
    if !pkce::is_valid_challenge(method, challenge) {
        return Err("code_challenge is malformed");
    }
    Ok(Some((method, challenge.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Overrides, RawSettings};

    fn settings() -> Settings {
        let hash = "00".repeat(32);
        RawSettings::from_toml(&format!(
            r#"
[[clients]]
id = "web"
secret_sha256 = "{hash}"
scopes = ["read", "write"]
audiences = ["api"]
grant_types = ["authorization_code"]
redirect_uris = ["https://app.example/cb?x=1", "http://127.0.0.1/native"]
[[clients]]
id = "spa"
scopes = ["read"]
audiences = ["api"]
grant_types = ["authorization_code", "implicit"]
redirect_uris = ["https://spa.example/cb"]
[[clients]]
id = "legacy"
secret_sha256 = "{hash}"
audiences = ["api"]
grant_types = ["authorization_code"]
redirect_uris = ["https://legacy.example/cb"]
allow_pkce_plain = true
[[clients]]
id = "m2m"
secret_sha256 = "{hash}"
audiences = ["api"]
grant_types = ["client_credentials"]
redirect_uris = ["https://m2m.example/cb"]
"#
        ))
        .unwrap()
        .validate(&Overrides::default())
        .unwrap()
    }

    fn params(q: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(q).unwrap()
    }

    const S256: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn redirect_error(q: &str) -> &'static str {
        match validate(&settings(), &params(q)) {
            Err(AuthoriseError::Redirect { error, .. }) => error,
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn untrusted_client_or_redirect_is_never_redirected_to() {
        for q in [
            "response_type=code&redirect_uri=https://app.example/cb?x=1",
            "response_type=code&client_id=nobody&redirect_uri=https://app.example/cb?x=1",
            "response_type=code&client_id=web",
            "response_type=code&client_id=web&redirect_uri=https://evil.example/cb",
            "response_type=code&client_id=web&redirect_uri=https://app.example/cb",
            "response_type=code&client_id=web&redirect_uri=https://app.example/cb?x=1%26y=2",
            "client_id=web&client_id=spa&redirect_uri=https://app.example/cb?x=1",
            // the loopback port may vary; the host, scheme and path may not
            "response_type=code&client_id=web&redirect_uri=http://localhost:5000/native",
            "response_type=code&client_id=web&redirect_uri=http://127.0.0.1:5000/other",
        ] {
            let e = validate(&settings(), &params(q)).unwrap_err();
            assert!(matches!(e, AuthoriseError::NoRedirect(_)), "{q}: {e:?}");
            assert_eq!(e.redirect_url("https://idp.example"), None);
        }
    }

    #[test]
    fn other_errors_go_back_to_the_client_with_state_and_iss() {
        let base = "client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1&state=xyz";
        let e = validate(
            &settings(),
            &params(&format!("{base}&response_type=id_token")),
        )
        .unwrap_err();
        assert_eq!(
            e.redirect_url("https://idp.example").unwrap(),
            "https://app.example/cb?x=1&error=unsupported_response_type&error_description=response_type+must+be+code+or+token&state=xyz&iss=https%3A%2F%2Fidp.example"
        );
        // the implicit flow's errors travel in the fragment
        let e = validate(&settings(), &params(&format!("{base}&response_type=token"))).unwrap_err();
        assert_eq!(
            e.redirect_url("https://idp.example").unwrap(),
            "https://app.example/cb?x=1#error=unauthorized_client&error_description=this+client+may+not+use+the+implicit+grant&state=xyz&iss=https%3A%2F%2Fidp.example"
        );
        assert_eq!(redirect_error(base), "invalid_request");
        assert_eq!(
            redirect_error(&format!("{base}&response_type=code&scope=admin")),
            "invalid_scope"
        );
        assert_eq!(
            redirect_error(&format!("{base}&response_type=code&state=again")),
            "invalid_request"
        );
        assert_eq!(
            redirect_error("response_type=code&client_id=m2m&redirect_uri=https://m2m.example/cb"),
            "unauthorized_client"
        );
    }

    #[test]
    fn implicit_needs_state_and_ignores_pkce() {
        let base = "response_type=token&client_id=spa&redirect_uri=https://spa.example/cb";
        assert_eq!(redirect_error(base), "invalid_request", "state is required");
        let r = validate(&settings(), &params(&format!("{base}&state=s"))).unwrap();
        assert_eq!(r.response_type, ResponseType::Token);
        assert_eq!(r.code_challenge, None);
        let e = validate(&settings(), &params(base)).unwrap_err();
        assert!(e.redirect_url("https://i").unwrap().contains("#error="));
    }

    #[test]
    fn prompt_and_max_age() {
        let base = "response_type=code&client_id=web&redirect_uri=https://app.example/cb?x=1";
        let r = validate(
            &settings(),
            &params(&format!("{base}&prompt=login+consent&max_age=0")),
        )
        .unwrap();
        assert!(r.prompt.login && r.prompt.consent && !r.prompt.none);
        assert_eq!(r.max_age, Some(0));
        for bad in [
            "prompt=none+login",
            "prompt=everything",
            "max_age=-1",
            "max_age=soon",
        ] {
            assert_eq!(
                redirect_error(&format!("{base}&{bad}")),
                "invalid_request",
                "{bad}"
            );
        }
        assert_eq!(
            redirect_error(&format!("{base}&request=eyJ")),
            "request_not_supported"
        );
    }

    #[test]
    fn pkce_rules() {
        let spa = "response_type=code&client_id=spa&redirect_uri=https://spa.example/cb";
        // public clients need a challenge, S256 only
        assert_eq!(redirect_error(spa), "invalid_request");
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            redirect_error(&format!("{spa}&code_challenge={verifier}")),
            "invalid_request",
            "plain is the default method, and refused"
        );
        assert_eq!(
            redirect_error(&format!(
                "{spa}&code_challenge={verifier}&code_challenge_method=plain"
            )),
            "invalid_request"
        );
        assert_eq!(
            redirect_error(&format!(
                "{spa}&code_challenge=short&code_challenge_method=S256"
            )),
            "invalid_request"
        );
        assert_eq!(
            redirect_error(&format!("{spa}&code_challenge_method=S256")),
            "invalid_request"
        );
        let ok = validate(
            &settings(),
            &params(&format!(
                "{spa}&code_challenge={S256}&code_challenge_method=S256&nonce=n1"
            )),
        )
        .unwrap();
        assert_eq!(ok.code_challenge, Some((Method::S256, S256.to_owned())));
        assert_eq!(ok.scopes, ["read"]);
        assert_eq!(ok.nonce.as_deref(), Some("n1"));
        // confidential: PKCE optional; plain only where configured
        let web = "response_type=code&client_id=web&redirect_uri=http://127.0.0.1:49152/native&scope=write";
        let ok = validate(&settings(), &params(web)).unwrap();
        assert_eq!(
            (ok.code_challenge, ok.redirect_uri.as_str(), ok.scopes),
            (
                None,
                "http://127.0.0.1:49152/native",
                vec!["write".to_owned()]
            )
        );
        assert_eq!(
            redirect_error(&format!("{web}&code_challenge={verifier}")),
            "invalid_request"
        );
        let legacy = format!(
            "response_type=code&client_id=legacy&redirect_uri=https://legacy.example/cb&code_challenge={verifier}"
        );
        let ok = validate(&settings(), &params(&legacy)).unwrap();
        assert_eq!(
            ok.code_challenge,
            Some((Method::Plain, verifier.to_owned()))
        );
    }
}
