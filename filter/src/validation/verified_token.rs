//! A token whose signature and registered claims checked out.

use crate::shared_state::denylist::TokenIds;
use crate::validation::claims::Lifetime;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// Index of the provider (in configuration order) that issued it.
    pub provider: usize,
    pub lifetime: Lifetime,
    pub jti: Option<String>,
    pub sid: Option<String>,
    pub sub: Option<String>,
    pub scopes: Vec<String>,
    /// `cnf.jkt` (RFC 9449 §6.1): the token is DPoP-bound to the key with this thumbprint.
    pub jkt: Option<String>,
    /// For a bound token, the `ath` its proofs must carry (base64url SHA-256 of the token, RFC
    /// 9449 §4.2), computed once here so that a cached token's requests do not hash it again.
    pub ath: Option<String>,
    pub claims: Map<String, Value>,
    /// Its denylist hashes (`jti`, `sid`, and its issuer's session and subject for cut-offs).
    pub ids: TokenIds,
    /// For a token vouched for by introspection: when that answer must be asked again (a cached
    /// verification is not used at or after this time).
    pub recheck_after: Option<u64>,
    /// The claim headers it is forwarded with (`claim_headers` of the configuration), rendered
    /// once when it enters the verified-token cache rather than on every request.
    pub claim_headers: Vec<(String, String)>,
}
