//! Checking one DPoP proof (RFC 9449 §4.3) for a DPoP-bound access token (§7.1): a compact JWS
//! with `typ: dpop+jwt`, an accepted asymmetric `alg`, a public `jwk` that signed it and whose
//! thumbprint is the token's `cnf.jkt`, `htm`/`htu` naming this request, `iat` within the
//! window, `ath` the hash of this token, and a `jti` this gateway has not seen within the window.
//! The signature goes through the same paths as tokens' ([`verify_jwk`]).

use super::ProofContext;
use super::htu::normal_htu;
use super::replay::{self, ReplayError};
use super::thumbprint::{jwk_thumbprint, token_hash};
use crate::claims::{numeric_date, optional_string};
use crate::config::DpopSettings;
use crate::denial::{Denial, DpopDenial};
use crate::jwk::parse_jwk;
use crate::jws;
use crate::signature::verify_jwk;
use serde_json::Value;

/// A bound on a proof's size: an RSA-8192 key and signature fit in well under this.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// A bound on a `jti` (the cache keeps a hash, but a huge one is no honest client's).
pub const MAX_JTI_BYTES: usize = 256;

/// Private and symmetric JWK members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn malformed(why: &'static str) -> DpopDenial {
    DpopDenial::MalformedProof(why)
}

/// Verifies the request's proof for a token bound to `jkt`.
pub fn verify(
    settings: &DpopSettings,
    jkt: &str,
    token: &str,
    context: &ProofContext<'_>,
) -> Result<(), DpopDenial> {
    let proof = match context.proofs {
        [] => return Err(DpopDenial::MissingProof),
        [one] => one.trim_matches([' ', '\t']),
        _ => return Err(DpopDenial::MultipleProofs),
    };
    if proof.contains(',') {
        // Folded headers ("a, b"): a JWS never has a comma.
        return Err(DpopDenial::MultipleProofs);
    }
    if proof.len() > MAX_PROOF_BYTES {
        return Err(malformed("the proof is too large"));
    }
    let jws = jws::parse(proof).map_err(|denial| match denial {
        Denial::UnsupportedAlgorithm => DpopDenial::BadAlgorithm,
        _ => malformed("not a compact JWS"),
    })?;
    if !jws
        .header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(malformed("typ is not dpop+jwt"));
    }
    let alg = jws.header.alg;
    if !settings.algorithms.contains(&alg) {
        return Err(DpopDenial::BadAlgorithm);
    }
    let Some(Value::Object(jwk_json)) = &jws.header.jwk else {
        return Err(DpopDenial::BadKey("no jwk object in the header"));
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk_json.contains_key(*m)) {
        return Err(DpopDenial::BadKey("the jwk holds a private key"));
    }
    let jwk = parse_jwk(jwk_json).map_err(DpopDenial::BadKey)?;
    if !jwk.usable_for(alg) {
        return Err(DpopDenial::BadKey("the jwk is not a key for alg"));
    }
    if !verify_jwk(
        context.native,
        alg,
        &jwk,
        jws.signing_input.as_bytes(),
        &jws.signature,
    ) {
        return Err(DpopDenial::BadSignature);
    }
    if jwk_thumbprint(jwk_json).as_deref() != Some(jkt) {
        return Err(DpopDenial::KeyMismatch);
    }
    let claims = &jws.claims;
    let string = |name| {
        optional_string(claims, name)
            .ok()
            .flatten()
            .ok_or(malformed("a required claim is missing or not a string"))
    };
    if string("htm")? != context.method {
        return Err(DpopDenial::WrongMethod);
    }
    let htu = normal_htu(string("htu")?);
    if htu.is_none() || htu.as_deref() != context.uri {
        return Err(DpopDenial::WrongUri);
    }
    let iat = numeric_date(claims, "iat")
        .ok()
        .flatten()
        .ok_or(malformed("iat is missing or not a date"))?;
    let last_second = iat
        .saturating_add(settings.max_age_seconds)
        .saturating_add(settings.leeway_seconds);
    if last_second < context.now {
        return Err(DpopDenial::Stale);
    }
    if iat > context.now.saturating_add(settings.leeway_seconds) {
        return Err(DpopDenial::Future);
    }
    match optional_string(claims, "ath") {
        Ok(Some(ath)) if ath == token_hash(token) => {}
        _ => return Err(DpopDenial::WrongTokenHash),
    }
    let jti = string("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(malformed("jti is empty or too long"));
    }
    // Last: only a proof that passed every other check takes a place in the cache.
    replay::record(
        context.replay,
        replay::proof_hash(jkt, jti),
        last_second.saturating_add(1),
        context.now,
        context.replay_capacity,
    )
    .map_err(|e| match e {
        ReplayError::Replayed => DpopDenial::Replayed,
        ReplayError::Full => DpopDenial::ReplayCacheFull,
        ReplayError::Unavailable => DpopDenial::ReplayCacheError,
    })
}
