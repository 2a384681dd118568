//! Checking one DPoP proof (RFC 9449 §4.3) for a DPoP-bound access token (§7.1): a compact JWS
//! with `typ: dpop+jwt`, an accepted asymmetric `alg`, a public `jwk` that signed it and whose
//! thumbprint is the token's `cnf.jkt`, `htm`/`htu` naming this request, `iat` within the
//! window, `ath` the hash of this token, and a `jti` this gateway has not seen within the window.
//! The signature goes through the same paths as tokens' ([`verify_jwk`]); the header and its key
//! are parsed once per client and worker ([`super::proof_keys`]).

use super::ProofContext;
use super::htu::normal_htu;
use super::proof_claims::{Member, ProofClaims};
use super::replay::{self, ReplayError};
use crate::config::DpopSettings;
use crate::http::denial::DpopDenial;
use crate::jose::jws;
use crate::jose::signature::verify_jwk;

/// A bound on a proof's size: an RSA-8192 key and signature fit in well under this.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// A bound on a `jti` (the cache keeps a hash, but a huge one is no honest client's).
pub const MAX_JTI_BYTES: usize = 256;

fn malformed(why: &'static str) -> DpopDenial {
    DpopDenial::MalformedProof(why)
}

/// Verifies the request's proof for a token bound to `jkt` whose hash is `ath`
/// ([`super::thumbprint::token_hash`]).
pub fn verify(
    settings: &DpopSettings,
    jkt: &str,
    ath: &str,
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
    let not_jws = malformed("not a compact JWS");
    let segments = jws::split(proof).map_err(|_| not_jws)?;
    let header = context.proof_keys.get_or_parse(segments.header);
    let header = header.as_ref().as_ref().map_err(|denial| *denial)?;
    if !settings.algorithms.contains(&header.alg) {
        return Err(DpopDenial::BadAlgorithm);
    }
    let (jwk, thumbprint) = header.key.as_ref().map_err(|denial| *denial)?;
    let payload = jws::decode_segment(segments.payload).map_err(|_| not_jws)?;
    let claims = ProofClaims::parse(&payload).map_err(|_| not_jws)?;
    let signature = jws::decode_segment(segments.signature).map_err(|_| not_jws)?;
    if !verify_jwk(
        context.native,
        header.alg,
        jwk,
        segments.signing_input.as_bytes(),
        &signature,
    ) {
        return Err(DpopDenial::BadSignature);
    }
    if thumbprint.as_deref() != Some(jkt) {
        return Err(DpopDenial::KeyMismatch);
    }
    let required = malformed("a required claim is missing or not a string");
    if text(&claims.htm).ok_or(required)? != context.method {
        return Err(DpopDenial::WrongMethod);
    }
    let htu = text(&claims.htu).ok_or(required)?;
    if !same_uri(htu, context.uri) {
        return Err(DpopDenial::WrongUri);
    }
    let iat = claims
        .iat
        .as_ref()
        .and_then(Member::date)
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
    if text(&claims.ath) != Some(ath) {
        return Err(DpopDenial::WrongTokenHash);
    }
    let jti = text(&claims.jti).ok_or(required)?;
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

/// Whether a proof's `htu` names the request's URI (`uri`, in normal form): the same text (a
/// normal form is its own normal form, [`super::htu`]'s tests), or the same once normalised.
fn same_uri(htu: &str, uri: Option<&str>) -> bool {
    let Some(uri) = uri else {
        return false;
    };
    if htu == uri && !htu.contains(['?', '#']) {
        return true;
    }
    normal_htu(htu).as_deref() == Some(uri)
}

fn text(member: &Option<Member>) -> Option<&str> {
    member.as_ref().and_then(Member::text)
}
