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
    "denied.revocations_not_loaded",
    "denied.bad_request",
    "denied.dpop_missing_proof",
    "denied.dpop_multiple_proofs",
    "denied.dpop_malformed_proof",
    "denied.dpop_bad_algorithm",
    "denied.dpop_bad_key",
    "denied.dpop_bad_signature",
    "denied.dpop_key_mismatch",
    "denied.dpop_wrong_htm",
    "denied.dpop_wrong_htu",
    "denied.dpop_stale",
    "denied.dpop_future",
    "denied.dpop_wrong_ath",
    "denied.dpop_replayed",
    "denied.dpop_replay_cache_full",
    "denied.dpop_replay_cache_error",
    "denied.dpop_bound_token_as_bearer",
    "denied.dpop_required",
    "denied.dpop_unbound_token",
    "denied.dpop_disabled",
    "denied.inactive",
    "denied.introspection_unavailable",
    "introspection_call_ok",
    "introspection_call_failed",
    "jwks_fetch_ok",
    "jwks_fetch_failed",
    "discovery_ok",
    "discovery_failed",
    "revocation_poll_ok",
    "revocation_poll_failed",
    "revocation_feed_synced",
    "logout_ok",
    "logout_failed",
    "backchannel_logout_ok",
    "backchannel_logout_ok_unremembered",
    "backchannel_logout_refused",
    "backchannel_logout_throttled",
    "backchannel_logout_unavailable",
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
    use filter::denial::{Denial, DpopDenial};

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
            Denial::RevocationsNotLoaded,
            Denial::Dpop(DpopDenial::MissingProof),
            Denial::Dpop(DpopDenial::MultipleProofs),
            Denial::Dpop(DpopDenial::MalformedProof("x")),
            Denial::Dpop(DpopDenial::BadAlgorithm),
            Denial::Dpop(DpopDenial::BadKey("x")),
            Denial::Dpop(DpopDenial::BadSignature),
            Denial::Dpop(DpopDenial::KeyMismatch),
            Denial::Dpop(DpopDenial::WrongMethod),
            Denial::Dpop(DpopDenial::WrongUri),
            Denial::Dpop(DpopDenial::Stale),
            Denial::Dpop(DpopDenial::Future),
            Denial::Dpop(DpopDenial::WrongTokenHash),
            Denial::Dpop(DpopDenial::Replayed),
            Denial::Dpop(DpopDenial::ReplayCacheFull),
            Denial::Dpop(DpopDenial::ReplayCacheError),
            Denial::Dpop(DpopDenial::BoundTokenAsBearer),
            Denial::Dpop(DpopDenial::BearerNotAccepted),
            Denial::Dpop(DpopDenial::UnboundToken),
            Denial::Dpop(DpopDenial::SchemeNotAccepted),
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
