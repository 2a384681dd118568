//! One module per grant type.

pub mod authorization_code;
pub mod client_credentials;
pub mod password;
pub mod refresh_token;
pub mod user_tokens;

use crate::oauth::error::OAuthError;
use crate::oauth::keys::KeyRing;
use crate::settings::{Client, Settings};
use crate::store::Store;

/// What issuing tokens uses: the settings, the store, one snapshot of the signing keys for
/// the whole issuance (a rotation landing meanwhile does not split it over two keys), and the
/// key of the request's checked DPoP proof, if it had one.
#[derive(Clone, Copy)]
pub struct GrantContext<'a> {
    pub settings: &'a Settings,
    pub store: &'a dyn Store,
    pub keys: &'a KeyRing,
    /// The RFC 7638 thumbprint of the DPoP proof's key (RFC 9449): the access token is bound
    /// to it (`cnf.jkt`), and so is a public client's refresh token.
    pub dpop_jkt: Option<&'a str>,
}

/// The scopes to grant: the requested ones if all are allowed for the client, else
/// `invalid_scope`; nothing requested → everything the client may have.
pub fn grant_scopes(client: &Client, requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(client.scopes.clone());
    };
    let mut granted: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !client.scopes.iter().any(|s| s == scope) {
            return Err(OAuthError::InvalidScope(format!(
                "scope {scope:?} is not allowed for this client"
            )));
        }
        if !granted.iter().any(|g| g == scope) {
            granted.push(scope.to_owned());
        }
    }
    Ok(granted)
}
