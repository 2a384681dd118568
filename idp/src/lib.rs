//! The identity provider: an OAuth 2.0 authorization server issuing RFC 9068 JWT access tokens
//! that the gateway filter validates locally, with a revocation feed so revoked tokens die on
//! every gateway.
//!
//! Layering: `routes` (thin axum handlers) → `grants` / `tokens` / `keys` (domain) → `store` (the
//! `Store` trait; SQLite by default).

pub mod admin;
pub mod authorize;
pub mod client_address;
pub mod client_auth;
pub mod consent;
pub mod cookies;
pub mod error;
pub mod form;
pub mod form_tokens;
pub mod grants;
pub mod id_token;
pub mod key_encryption;
pub mod keys;
pub mod lockout;
pub mod metrics;
pub mod pages;
pub mod pkce;
pub mod routes;
pub mod settings;
pub mod sso;
pub mod state;
pub mod store;
pub mod tokens;
pub mod users;

pub use routes::app;
pub use state::AppState;
