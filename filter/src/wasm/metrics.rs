//! Counters, defined lazily per VM under the `oauth2gw.` prefix (Envoy shows them as
//! `wasmcustom.oauth2gw.*`).

use super::host::log_at;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
}

impl Metrics {
    pub fn increment(&self, name: &str) {
        self.add(name, 1);
    }

    pub fn add(&self, name: &str, n: u64) {
        if n == 0 {
            return;
        }
        let id = self.ids.borrow().get(name).copied();
        let id = match id {
            Some(id) => id,
            None => {
                let full = format!("oauth2gw.{name}");
                match hostcalls::define_metric(MetricType::Counter, &full) {
                    Ok(id) => {
                        self.ids.borrow_mut().insert(name.to_owned(), id);
                        id
                    }
                    Err(status) => {
                        log_at!(
                            Warn,
                            "oauth2-gateway: cannot define metric {full}: {status:?}"
                        );
                        return;
                    }
                }
            }
        };
        let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
    }
}
