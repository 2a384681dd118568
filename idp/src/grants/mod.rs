//! One module per grant type.

pub mod authorization_code;
pub mod client_credentials;
pub mod password;
pub mod refresh_token;
pub mod user_tokens;

use crate::error::OAuthError;
use crate::settings::Client;

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
