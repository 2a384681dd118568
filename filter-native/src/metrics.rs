//! The filter's counters: the same names as the Wasm module's (`oauth2gw.<name>`), defined once per
//! configuration as Envoy stats. Envoy freezes stat creation after start-up, so every name is
//! defined up front rather than on first use.

/// Every counter the filter increments (without the `oauth2gw.` prefix).
pub const NAMES: &[&str] = &[
    "allowed",
    "denied.missing",
    "denied.malformed",
    "denied.bad_signature",
    "denied.unknown_key",
    "denied.expired",
    "denied.wrong_issuer",
    "denied.wrong_audience",
    "denied.wrong_type",
    "denied.bad_algorithm",
    "denied.insufficient_scope",
    "denied.claim_mismatch",
    "denied.revoked",
    "denied.no_keys",
    "denied.bad_request",
    "jwks_fetch_ok",
    "jwks_fetch_failed",
    "revocation_poll_ok",
    "revocation_poll_failed",
    "logout_ok",
    "logout_failed",
    "cache_hit",
    "cache_miss",
];

pub const PREFIX: &str = "oauth2gw.";

/// Envoy's id for each defined counter, by name.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    ids: Vec<(&'static str, usize)>,
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
        (Counters { ids }, refused)
    }

    pub fn id(&self, name: &str) -> Option<usize> {
        self.ids.iter().find(|(n, _)| *n == name).map(|(_, id)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter::denial::Denial;

    #[test]
    fn every_denial_has_a_counter() {
        let denials = [
            Denial::Missing,
            Denial::MultipleTokens,
            Denial::TooLarge,
            Denial::Malformed("x"),
            Denial::UnsupportedAlgorithm,
            Denial::UnknownKey,
            Denial::BadSignature,
            Denial::Expired,
            Denial::NotYetValid,
            Denial::WrongIssuer,
            Denial::WrongAudience,
            Denial::WrongType,
            Denial::ClaimMismatch("x".into()),
            Denial::InsufficientScope("x".into()),
            Denial::Revoked,
            Denial::NoKeys,
        ];
        for d in denials {
            let name = format!("denied.{}", d.metric_name());
            assert!(NAMES.contains(&name.as_str()), "{name}");
        }
    }

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
