//! Client authentication (RFC 6749 §2.3.1): client_secret_basic or client_secret_post, never
//! both; secrets compared as SHA-256 digests in constant time.

use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::settings::{Client, SecretHash, Settings};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A client that proved who it is (or a public client that only named itself).
pub struct Authenticated<'a> {
    pub client: &'a Client,
    pub confidential: bool,
}

/// One form-urlencoded value (RFC 6749 §2.3.1: the Basic user and password are encoded so).
/// A raw `&` is not part of an encoded value: decoding it as a form would keep only what comes
/// before it, so `secret&anything` would pass for `secret` (found by the `idp_token_request`
/// fuzz target). Such a credential is refused.
fn form_decode(s: &str) -> Result<String, OAuthError> {
    if s.contains('&') {
        return Err(OAuthError::InvalidClient);
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(&format!("v={s}")).map_err(|_| OAuthError::InvalidClient)?;
    pairs
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .ok_or(OAuthError::InvalidClient)
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| OAuthError::InvalidClient)?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(OAuthError::InvalidClient);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidClient);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| OAuthError::InvalidClient)?;
    let text = String::from_utf8(decoded).map_err(|_| OAuthError::InvalidClient)?;
    let (id, secret) = text.split_once(':').ok_or(OAuthError::InvalidClient)?;
    Ok(Some((form_decode(id)?, form_decode(secret)?)))
}

fn secret_matches(expected: Option<&SecretHash>, presented: &str) -> bool {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    // Compare against a dummy when the client has no secret, so timing does not tell.
    let target = expected.map_or([0u8; 32], |h| h.0);
    bool::from(digest.ct_eq(&target)) && expected.is_some()
}

/// Authenticates the client of a token-endpoint-style request.
pub fn authenticate<'a>(
    settings: &'a Settings,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Authenticated<'a>, OAuthError> {
    let basic = basic_credentials(headers)?;
    let post_secret = form.get("client_secret");
    let (id, secret) = match (basic, post_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method, not both".into(),
            ));
        }
        (Some((id, secret)), None) => {
            if form.get("client_id").is_some_and(|f| f != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id does not match the credentials".into(),
                ));
            }
            (id, Some(secret))
        }
        (None, secret) => {
            let id = form.get("client_id").ok_or(OAuthError::InvalidClient)?;
            (id.to_owned(), secret.map(str::to_owned))
        }
    };
    let client = settings.client(&id);
    match (client, secret) {
        (Some(client), Some(secret)) => {
            if secret_matches(client.secret.as_ref(), &secret) {
                Ok(Authenticated {
                    client,
                    confidential: true,
                })
            } else {
                Err(OAuthError::InvalidClient)
            }
        }
        (None, Some(secret)) => {
            let _ = secret_matches(None, &secret);
            Err(OAuthError::InvalidClient)
        }
        // A public client names itself; a confidential one must authenticate.
        (Some(client), None) if client.secret.is_none() => Ok(Authenticated {
            client,
            confidential: false,
        }),
        _ => Err(OAuthError::InvalidClient),
    }
}

/// Authenticates a confidential client allowed to act as a gateway.
pub fn authenticate_gateway<'a>(
    settings: &'a Settings,
    headers: &HeaderMap,
    form: &Params,
) -> Result<&'a Client, OAuthError> {
    let auth = authenticate(settings, headers, form)?;
    if !auth.confidential {
        return Err(OAuthError::InvalidClient);
    }
    Ok(auth.client)
}
