//! The identity provider: an OAuth 2.0 authorization server issuing RFC 9068 JWT access tokens
//! that the gateway filter validates locally, with a revocation feed so revoked tokens die on
//! every gateway.
//!
//! Layers, each using only those below it:
//! - [`cli`]: the `idp` command (serve, manage clients and users, rotate keys);
//! - [`http`]: the axum router, handlers, cookies, pages, forms, CSRF, metrics, server state;
//! - [`oauth`]: the domain (authorization, grants, tokens, keys, users, SSO, consent);
//! - [`federation`]: the revocation-hub role (upstream issuers' logouts as feed cut-offs);
//! - [`delivery`]: the background delivery of security events (SSF push, back-channel logout);
//! - [`ssf`], [`backchannel_sender`]: the Shared Signals transmitter's SETs and streams, and the
//!   back-channel logout tokens sent to clients;
//! - [`store`]: the `Store` / `Transaction` traits and their records (SQLite by default);
//! - [`settings`]: the validated configuration, used by every layer.

pub mod backchannel_sender;
pub mod cli;
pub mod delivery;
pub mod federation;
pub mod http;
pub mod oauth;
pub mod settings;
pub mod ssf;
pub mod store;

pub use http::{AppState, app};
