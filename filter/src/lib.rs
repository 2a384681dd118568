//! OAuth2 gateway filter for Envoy (proxy-wasm).
//!
//! The crate is a pure core — token parsing and validation, JWKS, per-route policy, denylist,
//! verified-token cache, logout state machine — with no proxy-wasm types and time passed in, plus a
//! thin proxy-wasm glue layer (`wasm` module, compiled for `wasm32` only) that moves data between
//! the host and the core.

pub mod algorithm;
pub mod bearer;
pub mod claim_headers;
pub mod claims;
pub mod config;
pub mod denial;
pub mod denylist;
pub mod denylist_store;
pub mod der;
pub mod feed_page;
pub mod gateway;
pub mod jose_header;
pub mod jwk;
pub mod jwks_share;
pub mod jws;
pub mod key_store;
pub mod lease;
pub mod logout;
pub mod policy;
pub mod refresh;
pub mod request_path;
pub mod shared_state;
pub mod strict_json;
pub mod token_cache;
pub mod token_sources;
pub mod validate;
pub mod verified;
pub mod verify;

#[cfg(target_arch = "wasm32")]
mod wasm;
