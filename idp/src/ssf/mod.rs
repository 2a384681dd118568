//! The Shared Signals transmitter (OpenID SSF 1.0, CAEP 1.0): what our IDP tells receivers (a
//! gateway's hub, anyone's SSF receiver) when a session ends or a token is revoked.
//!
//! - [`set`]: the Security Event Tokens (RFC 8417, `typ: secevent+jwt`) and their subjects
//!   (RFC 9493 `sub_id`);
//! - [`stream`]: a stream's configuration as receivers send and read it (SSF 1.0 §8.1.1);
//! - [`plan`]: which signed tokens one stored event becomes (SETs for streams, logout tokens
//!   for back-channel logout clients), run inside the store's fan-out transaction.
//!
//! Delivery (poll, push, retries) is [`crate::delivery`]; the endpoints are
//! `crate::http::routes::ssf`.

pub mod plan;
pub mod set;
pub mod stream;

/// RFC 8935 push delivery.
pub const PUSH_METHOD: &str = "urn:ietf:rfc:8935";
/// RFC 8936 poll delivery.
pub const POLL_METHOD: &str = "urn:ietf:rfc:8936";

/// The scope that manages streams (create, update, delete, status, verification) and polls.
pub const MANAGE_SCOPE: &str = "ssf.manage";
/// The scope that reads streams and polls.
pub const READ_SCOPE: &str = "ssf.read";
