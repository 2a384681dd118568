//! The decision for one request, from its method, path and `Authorization` headers: which rule
//! applies, whether a token is needed, and what to forward. The glue executes the outcome.

use crate::admission::bearer::check_b64token;
use crate::admission::claim_headers::claim_headers;
use crate::admission::policy::rule_for;
use crate::admission::token_cache::TokenCache;
use crate::admission::token_sources::{
    Found, cookies_without, find_token_or_dpop, header_values, without_query_param,
};
use crate::config::Action;
use crate::config::FilterConfig;
use crate::config::TokenSource;
use crate::config::introspection::IntrospectMode;
use crate::http::denial::{Denial, DenialResponse, Offer, Scheme};
use crate::http::request_path::{NormalPath, normalise};
use crate::jose::jwk::KeySet;
use crate::jose::signature::NativeVerifier;
use crate::shared_state::SharedData;
use crate::shared_state::denylist::Denylist;
use crate::validation::dpop::htu::request_uri;
use crate::validation::dpop::proof_keys::ProofKeyCache;
use crate::validation::dpop::{Presented, ProofContext};
use crate::validation::introspection::{self, is_jws_shaped, opaque_introspector};
use crate::validation::validate_with;
use crate::validation::verified_token::VerifiedToken;
use std::rc::Rc;

/// What the gateway sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Every request header, as the host gives them (names in any case).
    pub headers: &'a [(&'a str, &'a str)],
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Send the request upstream: first drop `remove_headers`, then add the token's claim
    /// headers (`token.claim_headers`, rendered once per cached token) and set `headers`; `token`
    /// is `None` when the route lets it through without one.
    Forward {
        /// `:path` when the normalised path (or the query without a token) differs from what the
        /// client sent, and `cookie` when a token cookie was cut out.
        headers: Vec<(String, String)>,
        /// The token's header when its provider does not forward tokens (`cookie` for a cookie
        /// token, set again without it).
        remove_headers: Vec<String>,
        token: Option<Rc<VerifiedToken>>,
    },
    Deny(Denial),
    /// The token must be introspected at provider `provider` first: the glue sends
    /// [`crate::validation::introspection::request`], feeds the answer to [`crate::validation::introspection::complete`],
    /// then decides again (the answer is then in the shared cache).
    Introspect {
        provider: usize,
        token: String,
    },
}

impl Outcome {
    /// Every header a forwarded request is given: the token's claim headers, then `headers`
    /// (empty for any other outcome).
    pub fn forwarded_headers(&self) -> Vec<(&str, &str)> {
        match self {
            Outcome::Forward { headers, token, .. } => token
                .iter()
                .flat_map(|t| &t.claim_headers)
                .chain(headers)
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            Outcome::Deny(_) | Outcome::Introspect { .. } => Vec::new(),
        }
    }
}

/// Why a token was not admitted: refused, or its provider must be asked first.
#[derive(Debug, Clone, PartialEq)]
pub enum NotAdmitted {
    Denied(Denial),
    /// The token must be introspected at this provider.
    Introspect(usize),
}

impl From<Denial> for NotAdmitted {
    fn from(denial: Denial) -> Self {
        NotAdmitted::Denied(denial)
    }
}

/// What the gateway knows at the moment of a request: each provider's keys (`keys[i]` for
/// provider `i`), the revoked tokens and sessions, and the time (Unix seconds).
#[derive(Clone, Copy)]
pub struct Knowledge<'a> {
    pub keys: &'a [&'a KeySet],
    pub denylist: &'a Denylist,
    /// Whether `denylist` may be trusted to hold every revocation: `false` while the gateway
    /// waits for its first up-to-date read of the revocation feed (see `crate::shared_state::feed_sync`), when
    /// a token not found in it is refused with 503 instead of accepted.
    pub revocations_loaded: bool,
    pub now: u64,
    /// Envoy's native signature verification, when the host has it.
    pub native: Option<&'a dyn NativeVerifier>,
    /// The data every worker of this Envoy shares: DPoP proofs' `jti`s are remembered in it, and
    /// introspection answers kept ([`crate::validation::introspection_cache`]).
    pub replay: &'a dyn SharedData,
}

/// Validates a token (or finds it in the verified-token cache) and checks it was not revoked.
pub fn admit(
    config: &FilterConfig,
    k: Knowledge<'_>,
    found: &Found<'_>,
    cache: &mut TokenCache,
) -> Result<Rc<VerifiedToken>, NotAdmitted> {
    let token = found.token;
    if token.len() > config.max_token_bytes {
        return Err(Denial::TooLarge.into());
    }
    let key = cache.key_of(token);
    let leeway = |p: usize| config.providers.get(p).map_or(0, |p| p.leeway_seconds);
    let verified = match cache.get(&key, k.now, leeway) {
        Some(hit) => hit,
        None => {
            check_syntax(found)?;
            let mut v = verify(config, k, token)?;
            v.claim_headers =
                claim_headers(&v, &config.claim_headers, &config.claim_header_separator);
            let v = Rc::new(v);
            cache.insert(key, Rc::clone(&v));
            v
        }
    };
    if k.denylist.refuses(&verified.ids) {
        return Err(Denial::Revoked.into());
    }
    if !k.revocations_loaded {
        return Err(Denial::RevocationsNotLoaded.into());
    }
    Ok(verified)
}

/// The syntax of a token from the `Authorization` header (RFC 6750 §2.1, RFC 9449 §7.1), checked
/// once per token: before its verification, not on the cache hits that follow.
fn check_syntax(found: &Found<'_>) -> Result<(), Denial> {
    match found.source {
        TokenSource::AuthorizationBearer => check_b64token(found.token),
        TokenSource::Header { .. } | TokenSource::Query(_) | TokenSource::Cookie(_) => Ok(()),
    }
}

/// A token's verification when the worker has none cached: a JWS is validated locally (and, for
/// a provider that introspects every token, its introspection answer is needed too); an opaque
/// token is the introspecting provider's, judged by its answer.
fn verify(
    config: &FilterConfig,
    k: Knowledge<'_>,
    token: &str,
) -> Result<VerifiedToken, NotAdmitted> {
    let provider = if is_jws_shaped(token) {
        let v = validate_with(config, k.keys, token, k.now, k.native)?;
        let always = config
            .providers
            .get(v.provider)
            .and_then(|p| p.introspection.as_ref());
        if always.is_none_or(|i| i.mode != IntrospectMode::Always) {
            return Ok(v);
        }
        v.provider
    } else {
        match opaque_introspector(config) {
            Some(index) => index,
            // Refused as the token it is (not a JWS).
            None => return Ok(validate_with(config, k.keys, token, k.now, k.native)?),
        }
    };
    match introspection::from_cache(config, k.replay, provider, token, k.now) {
        Some(answer) => Ok(answer?),
        None => Err(NotAdmitted::Introspect(provider)),
    }
}

/// Decides about one request. Rules see the normalised path (see [`crate::http::request_path`]); an
/// ambiguous path is refused.
pub fn decide(
    config: &FilterConfig,
    k: Knowledge<'_>,
    request: RequestInfo<'_>,
    cache: &mut TokenCache,
) -> Outcome {
    let target = match normalise(request.path) {
        Ok(target) => target,
        Err(why) => return Outcome::Deny(Denial::AmbiguousPath(why)),
    };
    let rule = rule_for(&config.rules, request.method, &target.path);
    if rule.action == Action::Bypass {
        return forward_anonymous(&target);
    }
    let found = match find_request_token(config, request.path, request.headers) {
        Ok(Some(found)) => found,
        Ok(None) if rule.action == Action::AllowMissing => return forward_anonymous(&target),
        Ok(None) => return Outcome::Deny(Denial::Missing),
        Err(denial) => return Outcome::Deny(denial),
    };
    let verified = match admit(config, k, &found, cache) {
        Ok(v) => v,
        Err(NotAdmitted::Denied(denial)) => return Outcome::Deny(denial),
        Err(NotAdmitted::Introspect(provider)) => {
            return Outcome::Introspect {
                provider,
                token: found.token.to_owned(),
            };
        }
    };
    let Some(provider) = config.providers.get(verified.provider) else {
        return Outcome::Deny(Denial::WrongIssuer);
    };
    if let Err(denial) = check_source(config, &verified, &found.source) {
        return Outcome::Deny(denial);
    }
    let proof_keys = &cache.proof_keys;
    if let Err(denial) = check_dpop(
        config,
        k,
        request,
        &target.path,
        &found,
        &verified,
        proof_keys,
    ) {
        return Outcome::Deny(denial);
    }
    if let Err(denial) = rule.authorise(&verified, &provider.name) {
        return Outcome::Deny(denial);
    }
    let mut headers = Vec::new();
    let mut remove_headers = Vec::new();
    let mut rest = None;
    if !provider.forward_token {
        // A proof is of no use without its token, and the upstream does not see the token.
        if header_values(request.headers, "dpop").next().is_some() {
            remove_headers.push("dpop".to_owned());
        }
        // Wherever the token was, the upstream does not see it.
        match &found.source {
            TokenSource::AuthorizationBearer => remove_headers.push("authorization".to_owned()),
            TokenSource::Header { name, .. } => remove_headers.push(name.clone()),
            TokenSource::Query(name) => rest = Some(without_query_param(target.rest, name)),
            TokenSource::Cookie(name) => {
                remove_headers.push("cookie".to_owned());
                let others = cookies_without(request.headers, name);
                if !others.is_empty() {
                    headers.push(("cookie".to_owned(), others));
                }
            }
        }
    }
    headers.extend(rewritten_path(&target, rest));
    Outcome::Forward {
        headers,
        remove_headers,
        token: Some(verified),
    }
}

/// The `:path` to forward when it is not what the client sent: the normalised path and the query
/// (`rest`, when a token was cut out of it).
fn rewritten_path(target: &NormalPath<'_>, rest: Option<String>) -> Option<(String, String)> {
    if !target.changed && rest.is_none() {
        return None;
    }
    let rest = rest.as_deref().unwrap_or(target.rest);
    Some((":path".to_owned(), format!("{}{rest}", target.path)))
}

fn forward_anonymous(target: &NormalPath<'_>) -> Outcome {
    Outcome::Forward {
        headers: rewritten_path(target, None).into_iter().collect(),
        remove_headers: Vec::new(),
        token: None,
    }
}

/// The `iss` a request's token claims, unverified: only to aim an early key refresh at the right
/// provider after an unknown `kid`, never to decide anything.
pub fn unverified_issuer(token: &str) -> Option<String> {
    let jws = crate::jose::jws::parse(token).ok()?;
    crate::validation::claims::optional_string(&jws.claims, "iss")
        .ok()?
        .map(str::to_owned)
}

/// The token of a logout request: it must be valid, but a revoked one is accepted (a repeated
/// logout is idempotent and retries the steps). Returns the token text, what it says, and whether
/// it was already revoked here.
///
/// A logout goes ahead while the revocation feed is not loaded yet
/// ([`Knowledge::revocations_loaded`]): it only revokes (at the IDP, then the session at the
/// resource server), so a token revoked before cannot gain anything by it, and refusing it would
/// make a user's logout fail on a fresh gateway for no security gain.
pub fn logout_subject<'t>(
    config: &FilterConfig,
    k: Knowledge<'_>,
    path: &'t str,
    headers: &'t [(&'t str, &'t str)],
) -> Result<(&'t str, VerifiedToken, bool), Denial> {
    let found = find_request_token(config, path, headers)?.ok_or(Denial::Missing)?;
    check_syntax(&found)?;
    let token = found.token;
    // An opaque token is judged by its introspection answer: the glue asks for one first
    // ([`logout_introspection`]); a token still without one (the answer could not be kept) is
    // refused with 503.
    let verified = match verify(config, k, token) {
        Ok(v) => v,
        Err(NotAdmitted::Denied(denial)) => return Err(denial),
        Err(NotAdmitted::Introspect(_)) => return Err(Denial::IntrospectionUnavailable),
    };
    check_source(config, &verified, &found.source)?;
    let target = normalise(path).map_err(Denial::AmbiguousPath)?;
    let request = RequestInfo {
        method: "POST",
        path,
        headers,
    };
    // Logouts are rare: the proof's header is parsed for this one.
    let proof_keys = ProofKeyCache::default();
    check_dpop(
        config,
        k,
        request,
        &target.path,
        &found,
        &verified,
        &proof_keys,
    )?;
    let revoked = k.denylist.refuses(&verified.ids);
    Ok((token, verified, revoked))
}

/// The provider to ask about a logout request's token before the logout can start (an opaque
/// token this gateway has no answer for yet), with the token; `None` when the logout can be
/// judged now ([`logout_subject`]).
pub fn logout_introspection(
    config: &FilterConfig,
    k: Knowledge<'_>,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(usize, String)> {
    let found = find_request_token(config, path, headers).ok()??;
    check_syntax(&found).ok()?;
    match verify(config, k, found.token) {
        Err(NotAdmitted::Introspect(provider)) => Some((provider, found.token.to_owned())),
        _ => None,
    }
}

/// The request's token: `Authorization: DPoP` too when some provider accepts DPoP.
pub fn find_request_token<'a>(
    config: &FilterConfig,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
) -> Result<Option<Found<'a>>, Denial> {
    find_token_or_dpop(
        &config.token_sources,
        config.dpop_algs.is_some(),
        path,
        headers,
    )
}

/// The token's presentation under its provider's DPoP settings (RFC 9449 §7): a DPoP-bound
/// token only with the `DPoP` scheme and a valid proof for this request.
fn check_dpop(
    config: &FilterConfig,
    k: Knowledge<'_>,
    request: RequestInfo<'_>,
    normal_path: &str,
    found: &Found<'_>,
    token: &VerifiedToken,
    proof_keys: &ProofKeyCache,
) -> Result<(), Denial> {
    let Some(provider) = config.providers.get(token.provider) else {
        return Err(Denial::WrongIssuer);
    };
    let header = |name: &str| header_values(request.headers, name).next();
    let uri = match found.scheme {
        Scheme::Dpop => request_uri(
            provider.dpop.htu_base.as_deref(),
            header(":scheme"),
            header(":authority").or_else(|| header("host")),
            normal_path,
        ),
        Scheme::Bearer => None,
    };
    let proofs: Vec<&str> = header_values(request.headers, "dpop").collect();
    let context = ProofContext {
        method: request.method,
        uri: uri.as_deref(),
        proofs: &proofs,
        now: k.now,
        replay: k.replay,
        replay_capacity: config.dpop_replay_cache_entries,
        native: k.native,
        proof_keys,
    };
    let presented = Presented {
        scheme: found.scheme,
        token: found.token,
        jkt: token.jkt.as_deref(),
        ath: token.ath.as_deref(),
    };
    crate::validation::dpop::check(&provider.dpop, presented, &context).map_err(Denial::Dpop)
}

/// The answer to a refused request (RFC 6750 §3; with DPoP offered, RFC 9449 §7.1–7.2: a
/// challenge per scheme, the error in the one the request used).
pub fn denial_response(
    config: &FilterConfig,
    headers: &[(&str, &str)],
    denial: &Denial,
) -> DenialResponse {
    let offer = Offer {
        realm: &config.realm,
        bearer: config.bearer_offered,
        dpop_algs: config.dpop_algs.as_deref(),
    };
    let used_dpop = config.dpop_algs.is_some()
        && header_values(headers, "authorization").any(|v| {
            v.trim_start()
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("dpop "))
        });
    let scheme = if used_dpop {
        Scheme::Dpop
    } else {
        Scheme::Bearer
    };
    denial.answer(&offer, scheme)
}

/// A token must come from a place its own provider accepts.
fn check_source(
    config: &FilterConfig,
    token: &VerifiedToken,
    source: &TokenSource,
) -> Result<(), Denial> {
    match config.providers.get(token.provider) {
        Some(p) if p.token_sources.contains(source) => Ok(()),
        _ => Err(Denial::Malformed(
            "token in a place its provider does not accept",
        )),
    }
}
