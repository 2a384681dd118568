//! The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3) as a domain check, and issuing an
//! authorization code once the user is authenticated. No I/O here except storing the code: the
//! browser side (login, consent) calls [`validate`] and then [`issue_code`].
//!
//! Errors come in two kinds (RFC 6749 §4.1.2.1): when the client or its `redirect_uri` cannot be
//! trusted the user is shown an error and **never redirected**; every other error goes back to
//! the client's redirect URI with `error=`, `state` and `iss` (RFC 9207).

mod request;
mod response;

pub use request::{redirect_uri_matches, validate};
pub use response::{code_hash, respond};

use crate::oauth::pkce::Method;
use response::{append_query, with_fragment};

/// What the client asks for: a code (RFC 6749 §4.1) or, in the implicit flow, an access token
/// in the URL fragment (§4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Code,
    Token,
}

/// The OpenID Connect `prompt` values (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prompt {
    /// Answer without any page: an error if the user must sign in or consent.
    pub none: bool,
    /// Ask for the password even if the browser is signed in.
    pub login: bool,
    /// Ask for consent even if it was given before.
    pub consent: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRequest {
    pub response_type: ResponseType,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub code_challenge: Option<(Method, String)>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    /// Seconds since the last login beyond which the user must sign in again.
    pub max_age: Option<i64>,
    /// The thumbprint of the DPoP key that must redeem the code (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
}

impl ValidRequest {
    /// An error to send back to the client for this request.
    pub fn error(&self, error: &'static str, description: &str) -> AuthoriseError {
        AuthoriseError::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
            description: description.to_owned(),
            fragment: self.response_type == ResponseType::Token,
        }
    }
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
        /// Errors of the implicit flow go in the fragment (RFC 6749 §4.2.2.1).
        fragment: bool,
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
                fragment,
            } => {
                let description = crate::oauth::error::clean_description(description);
                let mut params = vec![("error", *error), ("error_description", &description)];
                if let Some(s) = state {
                    params.push(("state", s));
                }
                params.push(("iss", issuer));
                if *fragment {
                    with_fragment(redirect_uri, &params)
                } else {
                    append_query(redirect_uri, &params)
                }
            }
        }
    }
}
