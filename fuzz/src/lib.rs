//! What the fuzz targets share: the fixed gateway (configuration, key set, the native module's
//! verifier over the same keys) and the reference path the differential targets compare with.
//!
//! Harness code: a broken fixture is a harness bug, so it panics (`expect`) at start-up.

pub mod fixtures;
pub mod reference;

/// The native module's verifier (AWS-LC, keys parsed once), compiled from its own source: the
/// module is a `cdylib` only, so it cannot be a dependency.
#[path = "../../filter-native/src/verifier.rs"]
pub mod native_verifier;
