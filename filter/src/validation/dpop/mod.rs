//! DPoP at the gateway (RFC 9449): whether a request's way of presenting its token is acceptable
//! for the token's provider, and for a DPoP-bound token the proof in its `DPoP` header — checked
//! on every request, even when the token itself comes from the verified-token cache.
//!
//! | provider `dpop` | `Bearer` + unbound | `Bearer` + bound | `DPoP` + bound + proof | `DPoP` + unbound |
//! |---|---|---|---|---|
//! | `disabled` | accepted | refused (downgrade) | refused | refused |
//! | `allowed` | accepted | refused (downgrade) | accepted | refused |
//! | `required` | refused | refused (downgrade) | accepted | refused |
//!
//! A token carrying `cnf.jkt` is never accepted without a valid proof by the key it names.

pub mod htu;
pub mod proof;
pub mod proof_claims;
pub mod proof_keys;
pub mod replay;
pub mod thumbprint;

use crate::config::{DpopMode, DpopSettings};
use crate::http::denial::{DpopDenial, Scheme};
use crate::jose::signature::NativeVerifier;
use crate::shared_state::SharedData;
use proof_keys::ProofKeyCache;
use std::borrow::Cow;

/// How a token was presented.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub scheme: Scheme,
    pub token: &'a str,
    /// The token's `cnf.jkt`, when it is DPoP-bound.
    pub jkt: Option<&'a str>,
    /// The `ath` proofs for this token must carry, when known already (kept with the verified
    /// token); `None`: computed from `token`.
    pub ath: Option<&'a str>,
}

/// What a proof is checked against: the request and the gateway's state.
#[derive(Clone, Copy)]
pub struct ProofContext<'a> {
    pub method: &'a str,
    /// The request's URI without query, in normal form ([`htu::request_uri`]); `None` when the
    /// request has no usable scheme or authority (no proof can match it).
    pub uri: Option<&'a str>,
    /// Every `DPoP` header value.
    pub proofs: &'a [&'a str],
    pub now: u64,
    pub replay: &'a dyn SharedData,
    pub replay_capacity: usize,
    pub native: Option<&'a dyn NativeVerifier>,
    /// This worker's parsed proof headers.
    pub proof_keys: &'a ProofKeyCache,
}

/// Accepts or refuses a token's presentation under a provider's DPoP settings.
pub fn check(
    settings: &DpopSettings,
    presented: Presented<'_>,
    context: &ProofContext<'_>,
) -> Result<(), DpopDenial> {
    match presented.scheme {
        Scheme::Bearer => {
            if presented.jkt.is_some() {
                return Err(DpopDenial::BoundTokenAsBearer);
            }
            if settings.mode == DpopMode::Required {
                return Err(DpopDenial::BearerNotAccepted);
            }
            Ok(())
        }
        Scheme::Dpop => {
            if !settings.offered() {
                return Err(DpopDenial::SchemeNotAccepted);
            }
            let jkt = presented.jkt.ok_or(DpopDenial::UnboundToken)?;
            let ath = match presented.ath {
                Some(ath) => Cow::Borrowed(ath),
                None => Cow::Owned(thumbprint::token_hash(presented.token)),
            };
            proof::verify(settings, jkt, &ath, context)
        }
    }
}
