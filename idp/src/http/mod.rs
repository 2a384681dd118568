//! The HTTP layer: the axum router and thin handlers ([`routes`]), cookies, pages, forms and
//! their CSRF tokens, the client address, metrics, and the running server's state. It calls the
//! domain ([`crate::oauth`]) and the store, and renders their errors in one place each
//! ([`oauth_error`] for RFC 6749 JSON, [`routes`]' `BrowserError` for the error page).

pub mod client_address;
pub mod cookies;
pub mod csrf;
pub mod form;
pub mod limits;
pub mod metrics;
pub mod oauth_error;
pub mod pages;
pub mod refusal;
pub mod routes;
pub mod server;
pub mod state;

pub use routes::app;
pub use state::AppState;
