//! RFC 6749 §5.2 errors: one enum for the domain; rendered in one place
//! (the http layer's `oauth_error`).

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed (401 with a `WWW-Authenticate` challenge).
    #[error("invalid_client")]
    InvalidClient,
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// A DPoP proof (RFC 9449 §5) is missing where required, malformed, or not for this request.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(String),
    /// The DPoP proof must carry this server nonce (RFC 9449 §8; sent as `DPoP-Nonce`).
    #[error("use_dpop_nonce")]
    UseDpopNonce { nonce: String },
    /// Something failed on our side; details are logged, never sent.
    #[error("server_error: {0}")]
    Server(String),
    /// The database is unreachable or restarting (nothing was written): 503, try again.
    #[error("temporarily_unavailable: {0}")]
    Unavailable(String),
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidDpopProof(_) => "invalid_dpop_proof",
            OAuthError::UseDpopNonce { .. } => "use_dpop_nonce",
            OAuthError::Server(_) => "server_error",
            OAuthError::Unavailable(_) => "temporarily_unavailable",
        }
    }

    /// The `error_description` sent with it (never server details).
    pub fn description(&self) -> Option<&str> {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::InvalidDpopProof(d) => Some(d),
            OAuthError::UseDpopNonce { .. } => {
                Some("the authorization server requires a nonce in the DPoP proof")
            }
            OAuthError::InvalidClient => Some("client authentication failed"),
            OAuthError::UnsupportedGrantType => Some("the grant type is not supported"),
            OAuthError::Server(_) => Some("the server could not complete the request"),
            OAuthError::Unavailable(_) => {
                Some("the service is temporarily unavailable; try again shortly")
            }
        }
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            OAuthError::Unavailable(e.to_string())
        } else {
            OAuthError::Server(e.to_string())
        }
    }
}

/// The longest `error_description` sent (request input quoted in it is cut).
const MAX_DESCRIPTION_CHARS: usize = 200;

/// `text` fit for `error_description` (RFC 6749 §4.1.2.1, §5.2: `%x20-21 / %x23-5B / %x5D-7E`):
/// `"` and `\` become `'`, other characters outside that set `?`; cut to 200 characters.
pub fn clean_description(text: &str) -> String {
    text.chars()
        .take(MAX_DESCRIPTION_CHARS)
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::clean_description;

    #[test]
    fn descriptions_keep_to_the_characters_rfc_6749_allows() {
        // Regression (issue 19, part 5): `parameter "grant_type" is missing`, and descriptions
        // quoting request input with `{:?}` (quotes, backslash escapes), broke RFC 6749 §5.2.
        assert_eq!(
            clean_description("parameter \"a\\u{0}\" is repeated"),
            "parameter 'a'u{0}' is repeated"
        );
        assert_eq!(clean_description("caf\u{e9}\n"), "caf??");
        assert_eq!(clean_description(&"x".repeat(500)).len(), 200);
    }
}
