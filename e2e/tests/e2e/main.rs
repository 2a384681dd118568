//! The end-to-end tests, in one test binary: each binary links the whole stack (host-test's
//! wasmtime, the filter, axum, tokio), so one binary instead of one per area saves most of the
//! link time. One module per area; a test's full name is `MODULE::TEST`.
//!
//! ```sh
//! cargo test -p e2e --test e2e                      # everything (scripts/test builds what it needs)
//! cargo test -p e2e --test e2e -- spine::           # one area (a filter matches substrings:
//! cargo test -p e2e --test e2e -- --exact logout::logout_revokes_everywhere   # `logout::` also
//!                                                   # matches `idp_logout::`; --exact takes one)
//! ```
//!
//! **Adding tests**: put them in `e2e/tests/e2e/NAME.rs` (not directly in `e2e/tests/`, which
//! would make another binary), add `mod NAME;` below in alphabetical order, and begin every test
//! that starts processes (IDP, Envoy, a browser, a registry) with `let _slot = crate::slot();`.
//!
//! **Concurrency**: libtest runs the tests of this binary on `--test-threads` threads (default:
//! one per core), where each former file used to be a process of its own. The tests share no
//! ports (`e2e::process::free_port` hands each port out once per process), no environment
//! variables and no global state, so they may run side by side; what they do share is the CPU.
//! A stack is an IDP, a resource server and one or two Envoys (or a browser, or a registry), and
//! more than a few at once on few cores make timing-bound steps (key rotation, logout
//! propagation) flaky. So at most [`MAX_STACKS`] tests hold a slot at once, on any machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod browser;
mod dashboard;
mod discovery;
mod envoy_configs;
mod faults;
mod federation;
mod gateway_rules;
mod idp_backchannel;
mod idp_cluster_gateways;
mod idp_logout;
mod idp_replicas;
mod introspection;
mod istio;
mod jwt_authn_agreement;
mod key_rotation;
mod logout;
mod native_module;
mod oci_image;
mod oidc_provider;
mod path_normalisation;
mod propagation;
mod scenarios_on_envoy;
mod scenarios_on_envoy_native;
mod shared_signals;
mod spine;
mod third_party_op;

use std::sync::{Condvar, Mutex, PoisonError};

/// Tests running processes at once, at most: as many as ran at once before, when each file was a
/// binary of its own run one after the other with libtest's two threads on this project's 2-core
/// machines; the same on bigger machines, where one binary would otherwise start a stack per core.
pub const MAX_STACKS: usize = 2;

static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// A test's right to start processes, held until it ends (also when it fails).
pub struct Slot(());

/// Waits for a free slot (at most [`MAX_STACKS`] are out at once).
pub fn slot() -> Slot {
    let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
    while *running >= MAX_STACKS {
        running = FREED.wait(running).unwrap_or_else(PoisonError::into_inner);
    }
    *running += 1;
    Slot(())
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        *running = running.saturating_sub(1);
        FREED.notify_one();
    }
}
