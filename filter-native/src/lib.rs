//! The OAuth2 gateway filter as an Envoy dynamic module: the same pure core as the Wasm module
//! (`filter`), loaded natively by Envoy 1.40 (`liboauth2_gateway.so`, HTTP filter
//! `envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter`).
//!
//! Layers: [`abi`] (the only `unsafe`: Envoy's C ABI, turned into safe handles) → `glue` (ties
//! handles to the logic) → the safe, unit-tested glue logic ([`request`], [`logout_flow`],
//! [`background`], [`shared`], [`verifier`], [`ticker`]) → the core, which decides everything.
//! Neither glue holds policy.

#[cfg(not(test))]
mod abi;
pub mod backchannel;
pub mod background;
pub mod boundary;
pub mod clock;
#[cfg(not(test))]
mod glue;
pub mod host;
pub mod introspection_flow;
pub mod log;
pub mod logout_flow;
pub mod metrics;
pub mod request;
pub mod shared;
pub mod ticker;
pub mod verifier;

#[cfg(test)]
mod dpop_tests;
#[cfg(test)]
mod introspection_tests;
#[cfg(test)]
mod tests;
