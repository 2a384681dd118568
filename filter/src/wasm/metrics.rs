//! Counters under the `oauth2gw.` prefix (Envoy shows them as `wasmcustom.oauth2gw.*`, and its
//! Prometheus output as `oauth2gw_*`): the ones both glues count ([`crate::counters::NAMES`]) are
//! defined when a configuration is loaded, so they exist at zero from the start as the native
//! module's do; this module's own (`verify_native`, `denylist_*`) are defined on first use.

use super::host::log_at;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
    /// The counters of every allowed request, found without hashing their names.
    hot: [Option<u32>; 3],
}

/// The counters every allowed request moves, in [`Metrics::hot`] order.
const HOT: [&str; 3] = ["allowed", "cache_hit", "cache_miss"];

impl Metrics {
    /// Every counter of [`crate::counters::NAMES`] defined (at zero) in this VM.
    pub fn defined() -> Metrics {
        let mut metrics = Metrics::default();
        for name in crate::counters::NAMES {
            metrics.id(name);
        }
        metrics.hot = HOT.map(|name| metrics.id(name));
        metrics
    }

    pub fn increment(&self, name: &str) {
        self.add(name, 1);
    }

    pub fn add(&self, name: &str, n: u64) {
        if n == 0 {
            return;
        }
        let hot = HOT
            .iter()
            .zip(&self.hot)
            .find_map(|(h, id)| (*h == name).then_some(*id))
            .flatten();
        if let Some(id) = hot.or_else(|| self.id(name)) {
            let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The counter's id in this VM, defined on first use; `None` (logged) when Envoy refuses it.
    fn id(&self, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.borrow().get(name).copied() {
            return Some(id);
        }
        let full = format!("{}{name}", crate::counters::PREFIX);
        match hostcalls::define_metric(MetricType::Counter, &full) {
            Ok(id) => {
                self.ids.borrow_mut().insert(name.to_owned(), id);
                Some(id)
            }
            Err(status) => {
                log_at!(
                    Warn,
                    "oauth2-gateway: cannot define metric {full}: {status:?}"
                );
                None
            }
        }
    }
}
