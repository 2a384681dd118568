//! The names of the counters both glues define when a configuration is loaded (the Wasm module's
//! `wasmcustom.oauth2gw.<name>`, the native module's `dynamicmodulescustom.oauth2gw.<name>`), so
//! each exists, at zero, from the start: a Prometheus `rate()` or alert then sees its first
//! increment, and a dashboard (docs/grafana/oauth2-gateway.json) finds every series it queries.
//! A glue may count more than these (the Wasm module's `verify_native`, `denylist_*`), defined on
//! first use.

/// Every counter both glues increment (without the [`PREFIX`]).
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
    "introspection_followed",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::denial::{Denial, DpopDenial};

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
}
