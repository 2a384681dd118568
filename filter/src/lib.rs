//! OAuth2 gateway filter for Envoy: one pure core, hosted by a glue layer per host.
//!
//! The core has no host types and takes time as a parameter. Its layers, from the request down:
//!
//! - **admission** ([`gateway`]): the decision for one request — which rule applies
//!   ([`policy`]), where the token is ([`token_sources`]), whether a cached or newly validated token
//!   is admitted ([`gateway::admit`]: cache, denylist, validation), what goes upstream;
//! - **validation** ([`validation`]): a compact token to a [`VerifiedToken`] — parse ([`jws`]),
//!   pick the provider and key ([`jwk`]), check the signature ([`signature`]), then the registered
//!   claims ([`claims`]);
//! - **configuration** ([`config`]): the JSON the host passes, validated once into
//!   [`FilterConfig`]; every other module reads it, it reads none of them but leaf types;
//! - **shared state** ([`shared_state`], [`lease`], [`jwks_share`], [`discovery`], [`denylist_store`],
//!   [`feed_sync`], [`refresh`]): what one Envoy's workers share (keys, the denylist, whether it
//!   is up to date with the feed, job schedules), over a
//!   host-neutral [`SharedData`] trait; [`logout`] is the logout sequence's state machine.
//!
//! The proxy-wasm glue (`wasm`, compiled for `wasm32` only) moves data between Envoy and the core.
//! The names below are the façade a host glue needs; the modules stay public for tests and tools.

pub use config::{ConfigError, FilterConfig};
pub use gateway::{Knowledge, Outcome, RequestInfo, decide};
pub use shared_state::SharedData;
pub use signature::NativeVerifier;
pub use validation::validate;
pub use verified_token::VerifiedToken;

pub mod algorithm;
pub mod backchannel;
pub mod backchannel_receiver;
pub mod bearer;
pub mod claim_headers;
pub mod claims;
pub mod config;
pub mod counters;
pub mod denial;
pub mod denylist;
pub mod denylist_store;
pub mod der;
pub mod discovery;
pub mod dpop;
pub mod feed_page;
pub mod feed_poll;
pub mod feed_sync;
pub mod gateway;
pub mod introspection;
pub mod introspection_cache;
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
pub mod signature;
pub mod strict_json;
pub mod token_cache;
pub mod token_sources;
pub mod validation;
pub mod verified_token;

#[cfg(target_arch = "wasm32")]
mod wasm;
