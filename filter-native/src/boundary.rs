//! The panic boundary: every hook runs its glue inside [`guard`], so a panic (a bug) never unwinds
//! into Envoy (undefined behaviour across `extern "C"`) and never takes the process down. The hook
//! then fails closed: a request gets a 503 and Envoy's log says why.
//!
//! This needs `panic = "unwind"`: the workspace's release profile aborts on panic (right for the
//! Wasm module, where V8 contains the trap), so the module is built with `--profile native-release`.

use crate::log::{Level, log};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A caught panic, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked(pub String);

/// Runs `f`; `Err` (after logging the panic's message) when it panicked.
pub fn guard<R>(what: &str, f: impl FnOnce() -> R) -> Result<R, Panicked> {
    // The state `f` touches is either rebuilt per call or replaced whole (arc-swap), so a panic
    // halfway leaves nothing half-written that a later call trusts: asserting unwind safety is
    // sound here.
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        log(
            Level::Critical,
            &format!("oauth2-gateway: internal error (panic) in {what}: {message}; failing closed"),
        );
        Panicked(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_and_reported_as_an_error() {
        let result: Result<u32, Panicked> = guard("test", || panic!("boom"));
        assert_eq!(result, Err(Panicked("boom".to_owned())));
        assert!(
            crate::log::take_test_lines()
                .iter()
                .any(|l| l.contains("internal error (panic) in test: boom"))
        );
    }

    #[test]
    fn a_normal_return_passes_through() {
        assert_eq!(guard("test", || 7), Ok(7));
    }
}
