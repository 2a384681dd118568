//! The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3) as a domain check, and issuing an
//! authorization code once the user is authenticated. No I/O here except storing the code: the
//! browser side (login, consent) calls [`validate`] and then [`issue_code`].
//!
//! Errors come in two kinds (RFC 6749 §4.1.2.1): when the client or its `redirect_uri` cannot be
//! trusted the user is shown an error and **never redirected**; every other error goes back to
//! the client's redirect URI with `error=`, `state` and `iss` (RFC 9207).

use crate::error::OAuthError;
use crate::grants::grant_scopes;
use crate::pkce::{self, Method};
use crate::settings::{Client, GrantType, Settings};
use crate::state::AppState;
use crate::store::{self, NewCode};
use crate::tokens::random_id;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub code_challenge: Option<(Method, String)>,
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthoriseError {
    /// Shown to the user; the client or its redirect URI is not trusted.
    #[error("{0}")]
    NoRedirect(String),
    /// Sent back to the client (see [`AuthoriseError::redirect_url`]).
    #[error("{error}: {description}")]
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

impl AuthoriseError {
    /// Where to send the user agent for a redirectable error; `None` for the other kind.
    pub fn redirect_url(&self, issuer: &str) -> Option<String> {
        match self {
            AuthoriseError::NoRedirect(_) => None,
            AuthoriseError::Redirect {
                redirect_uri,
                state,
                error,
                description,
            } => {
                let mut params = vec![("error", *error), ("error_description", description)];
                if let Some(s) = state {
                    params.push(("state", s));
                }
                params.push(("iss", issuer));
                append_query(redirect_uri, &params)
            }
        }
    }
}

/// `uri` with `params` added to its query (existing parameters kept, RFC 6749 §3.1.2).
fn append_query(uri: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Some(url.into())
}

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

/// Checks an authorization request with `response_type=code`, given as its query or form
/// parameters.
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
    let fail = |error: &'static str, description: &str| AuthoriseError::Redirect {
        redirect_uri: (*redirect_uri).to_owned(),
        state: state.clone(),
        error,
        description: description.to_owned(),
    };
    if let Some(k) = repeated.first() {
        return Err(fail(
            "invalid_request",
            &format!("parameter {k:?} is repeated"),
        ));
    }
    match map.get("response_type") {
        None => return Err(fail("invalid_request", "response_type is missing")),
        Some(&"code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code grant",
        ));
    }
    let scopes = grant_scopes(client, map.get("scope").copied()).map_err(|e| match e {
        OAuthError::InvalidScope(d) => fail("invalid_scope", &d),
        other => fail("invalid_request", &other.to_string()),
    })?;
    let code_challenge = check_pkce(
        client,
        map.get("code_challenge").copied(),
        map.get("code_challenge_method").copied(),
    )
    .map_err(|d| fail("invalid_request", d))?;
    Ok(ValidRequest {
        client_id: client.id.clone(),
        redirect_uri: (*redirect_uri).to_owned(),
        scopes,
        state,
        code_challenge,
        nonce: map.get("nonce").map(|n| (*n).to_owned()),
    })
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

pub fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

/// The user `sub`, authenticated by `amr` at `auth_time`, approved `request`: stores a new
/// single-use code (durably, before it is returned) and gives the URL to send the user agent to.
pub async fn issue_code(
    state: &AppState,
    request: &ValidRequest,
    sub: &str,
    amr: &[String],
    auth_time: i64,
    now: i64,
) -> Result<String, OAuthError> {
    let code = format!("{}{}", random_id(), random_id());
    let hash = code_hash(&code);
    let ttl = i64::try_from(state.settings.authorization_code_ttl_seconds).unwrap_or(60);
    let scope = request.scopes.join(" ");
    let amr = amr.join(" ");
    store::insert_code(
        &state.pool,
        &NewCode {
            hash: &hash,
            client_id: &request.client_id,
            redirect_uri: &request.redirect_uri,
            sub,
            scope: &scope,
            code_challenge: request.code_challenge.as_ref().map(|(_, c)| c.as_str()),
            code_challenge_method: request.code_challenge.as_ref().map(|(m, _)| m.as_str()),
            nonce: request.nonce.as_deref(),
            auth_time,
            amr: &amr,
            now,
            expires_at: now + ttl,
        },
    )
    .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", &state.settings.issuer));
    append_query(&request.redirect_uri, &params)
        .ok_or_else(|| OAuthError::Server("redirect_uri no longer parses".into()))
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
grant_types = ["authorization_code"]
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
        let e = validate(&settings(), &params(&format!("{base}&response_type=token"))).unwrap_err();
        assert_eq!(
            e.redirect_url("https://idp.example").unwrap(),
            "https://app.example/cb?x=1&error=unsupported_response_type&error_description=only+response_type%3Dcode+is+supported&state=xyz&iss=https%3A%2F%2Fidp.example"
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
