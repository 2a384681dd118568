//! DPoP (RFC 9449): proofs of possession of a client's key, checked at the token endpoint (the
//! tokens issued are then bound to that key: `cnf.jkt`) and at userinfo.
//!
//! One proof is checked by [`check`]: exactly one `DPoP` header; the JWS itself
//! ([`proof::verify`]: `typ`, algorithm allow-list, public `jwk`, signature, `htm`, `htu`,
//! `iat` window, `ath`); the server nonce when one is required ([`nonce`]); and the `jti`,
//! recorded in the store's replay table ([`Store::record_dpop_jti`]), shared by every replica.

pub mod jwk;
pub mod nonce;
pub mod proof;

use crate::oauth::error::OAuthError;
use crate::settings::{Client, DpopPolicy};
use crate::store::{Store, StoreError};
use nonce::NonceKey;
use sha2::{Digest, Sha256};

/// The algorithms a proof may use (never `none` or a symmetric one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofAlg {
    Es256,
    Rs256,
    Ps256,
    /// Ed25519 under its polymorphic name (RFC 8037).
    EdDsa,
    /// Ed25519 under its fully-specified name (RFC 9864), which openid-client (oauth4webapi)
    /// puts in its proofs for an Ed25519 key.
    Ed25519,
}

impl ProofAlg {
    /// What discovery publishes (`dpop_signing_alg_values_supported`).
    pub const ALL_NAMES: [&'static str; 5] = ["ES256", "EdDSA", "Ed25519", "PS256", "RS256"];

    pub fn parse(name: &str) -> Option<ProofAlg> {
        match name {
            "ES256" => Some(ProofAlg::Es256),
            "RS256" => Some(ProofAlg::Rs256),
            "PS256" => Some(ProofAlg::Ps256),
            "EdDSA" => Some(ProofAlg::EdDsa),
            "Ed25519" => Some(ProofAlg::Ed25519),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProofAlg::Es256 => "ES256",
            ProofAlg::Rs256 => "RS256",
            ProofAlg::Ps256 => "PS256",
            ProofAlg::EdDsa => "EdDSA",
            ProofAlg::Ed25519 => "Ed25519",
        }
    }
}

/// The request a proof must be for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The request's method (`POST` at the token endpoint).
    pub htm: &'a str,
    /// The endpoint's URL as published (issuer + path), without query.
    pub htu: &'a str,
    /// The access token sent with the proof (at a protected resource): `ath` must hash it.
    pub access_token: Option<&'a str>,
}

/// A checked proof: the key thumbprint tokens get bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub jkt: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DpopError {
    /// `invalid_dpop_proof`, with a description for the client.
    #[error("invalid_dpop_proof: {0}")]
    Invalid(String),
    /// `use_dpop_nonce`: the proof needs (another) server nonce.
    #[error("use_dpop_nonce")]
    UseNonce,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What checking a proof uses.
#[derive(Clone, Copy)]
pub struct Checker<'a> {
    pub policy: &'a DpopPolicy,
    pub nonces: &'a NonceKey,
    pub store: &'a dyn Store,
}

impl Checker<'_> {
    /// Whether `client`'s proofs need a server nonce.
    pub fn nonce_required(&self, client: Option<&Client>) -> bool {
        self.policy.require_nonce || client.is_some_and(|c| c.dpop_require_nonce)
    }
}

/// Checks the `DPoP` header values of a request (`values`: every one of them) for `target`;
/// `None` when there is none.
pub async fn check(
    checker: &Checker<'_>,
    values: &[&[u8]],
    target: &Target<'_>,
    require_nonce: bool,
    now: i64,
) -> Result<Option<Proof>, DpopError> {
    let value = match values {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(DpopError::Invalid(
                "exactly one DPoP header is allowed".into(),
            ));
        }
    };
    let token = std::str::from_utf8(value)
        .map_err(|_| DpopError::Invalid("the DPoP header is not text".into()))?
        .trim();
    let verified = proof::verify(token, target, checker.policy, now).map_err(DpopError::Invalid)?;
    if require_nonce
        && !verified
            .nonce
            .as_deref()
            .is_some_and(|n| checker.nonces.accepts(n, now))
    {
        return Err(DpopError::UseNonce);
    }
    // The jti is remembered as long as the proof could be accepted (RFC 9449 §11.1), keyed with
    // the key's thumbprint so that one client cannot use up another's.
    let id = hex::encode(Sha256::digest(
        format!("{}:{}", verified.jkt, verified.jti).as_bytes(),
    ));
    let max_age = i64::try_from(checker.policy.proof_max_age_seconds).unwrap_or(60);
    let expires_at = verified.iat.max(now) + max_age + 1;
    if !checker.store.record_dpop_jti(&id, expires_at, now).await? {
        return Err(DpopError::Invalid(
            "the proof was used before (its jti is replayed)".into(),
        ));
    }
    Ok(Some(Proof { jkt: verified.jkt }))
}

/// The proof of a token request of `client` (RFC 9449 §5): checked if there is one, required
/// when the client is configured with `dpop_bound_access_tokens`.
pub async fn token_request(
    checker: &Checker<'_>,
    client: &Client,
    values: &[&[u8]],
    token_endpoint: &str,
    now: i64,
) -> Result<Option<Proof>, OAuthError> {
    let target = Target {
        htm: "POST",
        htu: token_endpoint,
        access_token: None,
    };
    let require_nonce = checker.nonce_required(Some(client));
    match check(checker, values, &target, require_nonce, now).await {
        Ok(None) if client.dpop_bound_access_tokens => Err(OAuthError::InvalidDpopProof(
            "this client must send a DPoP proof (dpop_bound_access_tokens)".into(),
        )),
        Ok(proof) => Ok(proof),
        Err(DpopError::Invalid(d)) => Err(OAuthError::InvalidDpopProof(d)),
        Err(DpopError::UseNonce) => Err(OAuthError::UseDpopNonce {
            nonce: checker.nonces.current(now),
        }),
        Err(DpopError::Store(e)) => Err(e.into()),
    }
}
