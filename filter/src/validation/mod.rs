//! Token validation: parse, pick the provider by `iss`, check the algorithm allow-list, find the
//! key, verify the signature, then check the registered claims. Time is a parameter.

pub mod claims;
pub mod dpop;
pub mod introspection;
pub mod introspection_cache;
pub mod introspection_flight;
pub mod verified_token;

use crate::config::FilterConfig;
use crate::http::denial::Denial;
use crate::jose::jwk::KeySet;
use crate::jose::jws;
use crate::jose::signature::{NativeVerifier, verify_jwk};
use crate::shared_state::denylist::TokenIds;
use crate::validation::claims::{Lifetime, check_audience, optional_string, scopes};
use crate::validation::dpop::thumbprint::token_hash;
use crate::validation::verified_token::VerifiedToken;

/// Validates `token` against the configuration and the current keys of each provider
/// (`keys[i]` belongs to `config.providers[i]`). `now` is seconds since the Unix epoch.
pub fn validate(
    config: &FilterConfig,
    keys: &[&KeySet],
    token: &str,
    now: u64,
) -> Result<VerifiedToken, Denial> {
    validate_with(config, keys, token, now, None)
}

/// [`validate`], verifying signatures with `native` where it can (see [`NativeVerifier`]).
pub fn validate_with(
    config: &FilterConfig,
    keys: &[&KeySet],
    token: &str,
    now: u64,
    native: Option<&dyn NativeVerifier>,
) -> Result<VerifiedToken, Denial> {
    if token.len() > config.max_token_bytes {
        return Err(Denial::TooLarge);
    }
    let jws = jws::parse(token)?;
    // The issuer is read before the signature is checked only to choose whose keys to use; it is
    // authenticated by that same signature.
    let iss = optional_string(&jws.claims, "iss")?.ok_or(Denial::WrongIssuer)?;
    let (index, provider) = config
        .providers
        .iter()
        .enumerate()
        .find(|(_, p)| p.issuer == iss)
        .ok_or(Denial::WrongIssuer)?;
    if !provider.algorithms.contains(&jws.header.alg) {
        return Err(Denial::UnsupportedAlgorithm);
    }
    if !provider.token_types.is_empty() {
        let typ = jws.header.typ.as_deref().unwrap_or("");
        if !provider
            .token_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(typ))
        {
            return Err(Denial::WrongType);
        }
    }
    let keyset = keys
        .get(index)
        .copied()
        .filter(|k| !k.is_empty())
        .ok_or(Denial::NoKeys)?;
    let mut candidates = keyset
        .candidates(jws.header.kid.as_deref(), jws.header.alg)
        .peekable();
    if candidates.peek().is_none() {
        return Err(Denial::UnknownKey);
    }
    let message = jws.signing_input.as_bytes();
    if !candidates.any(|k| verify_jwk(native, jws.header.alg, k, message, &jws.signature)) {
        return Err(Denial::BadSignature);
    }
    verified_claims(config, index, jws.claims, token, now)
}

/// The registered-claim checks of provider `index` on claims it vouches for (a JWS whose
/// signature verified, or an active introspection answer), and the [`VerifiedToken`] they make.
pub fn verified_claims(
    config: &FilterConfig,
    index: usize,
    claims: serde_json::Map<String, serde_json::Value>,
    token: &str,
    now: u64,
) -> Result<VerifiedToken, Denial> {
    let provider = config.providers.get(index).ok_or(Denial::WrongIssuer)?;
    let lifetime = Lifetime::from_claims(&claims)?;
    lifetime.check(now, provider.leeway_seconds)?;
    check_audience(&claims, &provider.audiences)?;
    let jti = optional_string(&claims, "jti")?.map(str::to_owned);
    let sid = optional_string(&claims, "sid")?.map(str::to_owned);
    let sub = optional_string(&claims, "sub")?.map(str::to_owned);
    let scopes = scopes(&claims)?;
    let jkt = confirmation_thumbprint(&claims)?;
    let ath = jkt.as_ref().map(|_| token_hash(token));
    let ids = TokenIds::of(
        &provider.issuer,
        jti.as_deref(),
        sid.as_deref(),
        sub.as_deref(),
        lifetime.iat,
    );
    Ok(VerifiedToken {
        ids,
        jkt,
        ath,
        provider: index,
        lifetime,
        jti,
        sid,
        sub,
        scopes,
        claims,
        recheck_after: None,
        claim_headers: Vec::new(),
    })
}

/// `cnf.jkt` of a DPoP-bound token (RFC 9449 §6.1). A `cnf` the gateway cannot check (not an
/// object, or a confirmation method other than `jkt`, such as mTLS's `x5t#S256`) is refused:
/// accepting it would drop the binding.
fn confirmation_thumbprint(
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<String>, Denial> {
    match claims.get("cnf") {
        None => Ok(None),
        Some(serde_json::Value::Object(cnf)) => match cnf.get("jkt") {
            Some(serde_json::Value::String(jkt)) if !jkt.is_empty() => Ok(Some(jkt.clone())),
            Some(_) => Err(Denial::Malformed("cnf.jkt is not a thumbprint")),
            None => Err(Denial::Malformed(
                "a confirmation method the gateway cannot check",
            )),
        },
        Some(_) => Err(Denial::Malformed("cnf is not an object")),
    }
}
