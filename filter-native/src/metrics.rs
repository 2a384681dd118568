//! The filter's counters ([`filter::counters::NAMES`], the same as the Wasm module's), defined once
//! per configuration as Envoy stats. Envoy freezes stat creation after start-up, so every name is
//! defined up front rather than on first use.

pub use filter::counters::{NAMES, PREFIX};

/// Envoy's id for each defined counter, by name.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    ids: Vec<(&'static str, usize)>,
    /// The counters of every allowed request, found without a scan.
    allowed: Option<usize>,
    cache_hit: Option<usize>,
    cache_miss: Option<usize>,
}

impl Counters {
    /// Defines every counter with `define` (given the full name); names Envoy refuses are left out
    /// (and then simply not counted).
    pub fn define(mut define: impl FnMut(&str) -> Option<usize>) -> (Counters, Vec<&'static str>) {
        let mut ids = Vec::with_capacity(NAMES.len());
        let mut refused = Vec::new();
        for name in NAMES {
            match define(&format!("{PREFIX}{name}")) {
                Some(id) => ids.push((*name, id)),
                None => refused.push(*name),
            }
        }
        let mut counters = Counters {
            ids,
            ..Counters::default()
        };
        counters.allowed = counters.scan("allowed");
        counters.cache_hit = counters.scan("cache_hit");
        counters.cache_miss = counters.scan("cache_miss");
        (counters, refused)
    }

    pub fn id(&self, name: &str) -> Option<usize> {
        match name {
            "allowed" => self.allowed,
            "cache_hit" => self.cache_hit,
            "cache_miss" => self.cache_miss,
            _ => self.scan(name),
        }
    }

    fn scan(&self, name: &str) -> Option<usize> {
        self.ids.iter().find(|(n, _)| *n == name).map(|(_, id)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_defined_with_the_prefix_and_found_by_name() {
        let mut seen = Vec::new();
        let (counters, refused) = Counters::define(|n| {
            seen.push(n.to_owned());
            (n != "oauth2gw.cache_miss").then_some(seen.len())
        });
        assert_eq!(seen.len(), NAMES.len());
        assert!(seen.iter().all(|n| n.starts_with("oauth2gw.")));
        assert_eq!(refused, vec!["cache_miss"]);
        assert_eq!(counters.id("allowed"), Some(1));
        assert_eq!(counters.id("cache_miss"), None);
    }
}
