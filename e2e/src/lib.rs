//! End-to-end harness: starts the real IDP, resource server and Envoy (with the built
//! `filter.wasm`) on free loopback ports, and tears them down when dropped, even when a test fails.
//!
//! Binaries are found in the workspace's `target/` (built by `scripts/test`), or where the
//! environment says: `IDP_BIN`, `RS_BIN`, `ENVOY_BIN`, `FILTER_WASM`.

pub mod artifacts;
pub mod client;
pub mod envoy;
pub mod federation;
pub mod load;
pub mod oidc_provider;
pub mod process;
pub mod scenario_runner;
pub mod stack;
pub mod suite;
pub mod third_party;
pub mod web_login;

/// A throwaway PostgreSQL cluster (for IDP replicas on one database).
pub use test_support::postgres;
