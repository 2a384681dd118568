//! OAuth2 gateway filter for Envoy: one pure core, hosted by a glue layer per host.
//!
//! The core has no host types and takes time as a parameter. Its layers, one folder each, from
//! the request down:
//!
//! - **[`admission`]**: the decision for one request — which rule applies
//!   ([`admission::policy`]), where the token is ([`admission::token_sources`]), whether a cached
//!   or newly validated token is admitted ([`admission::gateway::admit`]: cache, denylist,
//!   validation), which claim headers go upstream ([`admission::claim_headers`]);
//! - **[`logout`]**: the logout sequence's state machine, the back-channel logout receiver and
//!   what a gateway reports to its revocation hub;
//! - **[`validation`]**: a token to a [`VerifiedToken`] — a JWS by its signature and registered
//!   claims ([`validation::claims`]), an opaque token by introspection
//!   ([`validation::introspection`]), a DPoP proof ([`validation::dpop`]);
//! - **[`shared_state`]** and revocation: what one Envoy's workers share (keys, discovery
//!   documents, the denylist and its cut-offs, whether it is up to date with the revocation feed,
//!   job schedules), over a host-neutral [`SharedData`] trait;
//! - **[`config`]**: the JSON the host passes, validated once into [`FilterConfig`]; every other
//!   module reads it, it reads none of them but leaf types;
//! - the leaves every layer shares: **[`jose`]** (algorithms, compact JWS, JSON Web Keys,
//!   signature verification), **[`http`]** (a request's path, a refusal's status and headers),
//!   [`callout`] (a request the host dispatches) and [`counters`].
//!
//! Each layer uses only the ones below it; `scripts/lib/module_deps.py filter/src` fails on a
//! cycle.
//!
//! The proxy-wasm glue (`wasm`, compiled for `wasm32` only) moves data between Envoy and the core;
//! the native glue is the `filter-native` crate. The names below are the façade a host glue
//! needs; the modules stay public for tests and tools.

pub use admission::gateway::{Knowledge, Outcome, RequestInfo, decide};
pub use config::{ConfigError, FilterConfig};
pub use jose::signature::NativeVerifier;
pub use shared_state::SharedData;
pub use validation::validate;
pub use validation::verified_token::VerifiedToken;

pub mod admission;
pub mod callout;
pub mod config;
pub mod counters;
pub mod http;
pub mod jose;
pub mod logout;
pub mod shared_state;
pub mod validation;

#[cfg(target_arch = "wasm32")]
mod wasm;
