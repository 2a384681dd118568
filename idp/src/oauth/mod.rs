//! The OAuth 2.0 / OpenID Connect domain: authorization requests, grants, tokens and ID tokens,
//! PKCE, consent, single sign-on sessions, users and their login budgets, client
//! authentication, signing keys. No HTTP here: callers pass what a function uses (settings, the
//! store, a key-ring snapshot, `now`) and get typed errors ([`error::OAuthError`]).

pub mod authorization;
pub mod client_auth;
pub mod consent;
pub mod dpop;
pub mod error;
pub mod grants;
pub mod id_token;
pub mod keys;
pub mod lockout;
pub mod params;
pub mod pkce;
pub mod sso;
pub mod tokens;
pub mod users;
