//! Token introspection (RFC 7662, and RFC 9701 JWT answers) for providers whose tokens cannot be
//! judged locally: opaque tokens, or every token of a provider configured `introspect: always`.
//!
//! The gateway asks as a confidential client (client_secret_basic). An active answer's claims go
//! through the same checks as a JWT's ([`crate::validation::verified_claims`]: `iss` must be the
//! provider's, `aud`, `exp`, then rules, claim headers, `cnf.jkt` → DPoP binding, cut-offs), so an
//! introspected token becomes the same [`VerifiedToken`] a JWT does. Answers are kept once per
//! Envoy ([`crate::validation::introspection_cache`]) until the token's `exp` or `cache_seconds`; "inactive"
//! for `negative_cache_seconds`. No usable answer (the provider down, slow, an error, garbage) is
//! never taken for a positive one: the request is refused with 503 and `Retry-After`.

use crate::callout::{CalloutRequest, FORM};
use crate::config::FilterConfig;
use crate::config::introspection::{IntrospectMode, Introspection};
use crate::config::services::form_encode;
use crate::http::denial::Denial;
use crate::jose::jwk::KeySet;
use crate::jose::signature::{NativeVerifier, verify_jwk};
use crate::shared_state::SharedData;
use crate::shared_state::denylist::TokenIds;
use crate::shared_state::discovery::DiscoveredEndpoints;
use crate::validation::claims::{check_audience, numeric_date, optional_string};
use crate::validation::introspection_cache::{self, Cached};
use crate::validation::verified_claims;
use crate::validation::verified_token::VerifiedToken;
use serde_json::{Map, Value};

/// The media type of an RFC 9701 answer.
pub const JWT_ANSWER_TYPE: &str = "application/token-introspection+jwt";

/// Whether a token has the shape of a compact JWS (three dot-separated parts): such a token is
/// validated locally; anything else is opaque.
pub fn is_jws_shaped(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The provider that introspects opaque tokens, if one does.
pub fn opaque_introspector(config: &FilterConfig) -> Option<usize> {
    config.providers.iter().position(|p| {
        p.introspection
            .as_ref()
            .is_some_and(|i| i.mode == IntrospectMode::Opaque)
    })
}

/// The introspection request for `token` at provider `index` (`discovered`: what its discovery
/// document gave, if it has one); `None` when it has no introspection or its endpoint is not
/// known yet (not discovered).
pub fn request(
    config: &FilterConfig,
    index: usize,
    token: &str,
    discovered: &DiscoveredEndpoints,
) -> Option<CalloutRequest> {
    let intro = config.providers.get(index)?.introspection.as_ref()?;
    let endpoint = intro
        .endpoint
        .as_ref()
        .or(discovered.introspection.as_ref())?;
    let accept = if intro.jwt_response {
        JWT_ANSWER_TYPE
    } else {
        "application/json"
    };
    let mut call = CalloutRequest::post(
        endpoint,
        FORM,
        Some(("authorization".into(), intro.client.basic_authorization())),
        format!("token={}&token_type_hint=access_token", form_encode(token)).into_bytes(),
    );
    call.headers.push(("accept".into(), accept.into()));
    Some(call)
}

/// What the shared cache says about a token of provider `index`: its verification, "inactive",
/// or `None` when the provider must be asked.
pub fn from_cache(
    config: &FilterConfig,
    shared: &dyn SharedData,
    index: usize,
    token: &str,
    now: u64,
) -> Option<Result<VerifiedToken, Denial>> {
    match introspection_cache::get(shared, introspection_cache::token_hash(token), now)? {
        Cached::Inactive => Some(Err(Denial::Inactive)),
        Cached::Active { claims, dies_at } => {
            let claims = serde_json::from_slice::<Map<String, Value>>(&claims).ok()?;
            Some(verified(config, index, claims, token, now, dies_at))
        }
    }
}

fn verified(
    config: &FilterConfig,
    index: usize,
    claims: Map<String, Value>,
    token: &str,
    now: u64,
    dies_at: u64,
) -> Result<VerifiedToken, Denial> {
    let mut v = verified_claims(config, index, claims, token, now)?;
    v.recheck_after = Some(dies_at);
    if v.jti.is_none()
        && let Some(provider) = config.providers.get(index)
    {
        // An answer without `jti` (oidc-provider's for client_credentials tokens, say): the
        // token is named by its own digest, so that a logout here refuses it on every worker at
        // once (a denylist entry) instead of when the cached answer runs out.
        v.jti = Some(format!(
            "opaque-token:{:016x}",
            introspection_cache::token_hash(token)
        ));
        v.ids = TokenIds::of(
            &provider.issuer,
            v.jti.as_deref(),
            v.sid.as_deref(),
            v.sub.as_deref(),
            v.lifetime.iat,
        );
    }
    Ok(v)
}

/// What the gateway knows when the provider's answer arrives.
#[derive(Clone, Copy)]
pub struct AnswerContext<'a> {
    pub keys: &'a KeySet,
    pub now: u64,
    pub native: Option<&'a dyn NativeVerifier>,
    pub shared: &'a dyn SharedData,
}

/// Reads the provider's answer to an introspection of `token` (`status` `None`: no answer) and
/// keeps it in the shared cache. [`Denial::UnknownKey`]: an RFC 9701 answer signed by a key the
/// gateway does not have yet — the glue asks for an early key fetch and answers as
/// [`Denial::IntrospectionUnavailable`]. A JWT validated locally
/// (`introspect: always`) keeps its own claims: the answer only says whether it is active.
pub fn complete(
    config: &FilterConfig,
    cx: AnswerContext<'_>,
    index: usize,
    token: &str,
    status: Option<u32>,
    body: &[u8],
) -> Result<(), Denial> {
    let provider = config.providers.get(index).ok_or(Denial::WrongIssuer)?;
    let intro = provider
        .introspection
        .as_ref()
        .ok_or(Denial::IntrospectionUnavailable)?;
    if status != Some(200) {
        return Err(Denial::IntrospectionUnavailable);
    }
    let answer = if intro.jwt_response {
        jwt_answer(config, index, intro, cx, body)?
    } else {
        serde_json::from_slice::<Map<String, Value>>(body)
            .map_err(|_| Denial::IntrospectionUnavailable)?
    };
    let hash = introspection_cache::token_hash(token);
    let capacity = config.introspection_cache_entries;
    let store = |claims: Option<&[u8]>, dies_at: u64| {
        // A refused write is not an error for this request: it is judged on the answer.
        let _ = introspection_cache::put(cx.shared, hash, claims, dies_at, cx.now, capacity);
    };
    match answer.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            store(None, cx.now.saturating_add(intro.negative_cache_seconds));
            return Err(Denial::Inactive);
        }
        _ => return Err(Denial::IntrospectionUnavailable),
    }
    let mut claims = answer;
    // RFC 7662 §2.2: `iss` is optional; when present it must be the provider's.
    match optional_string(&claims, "iss")? {
        Some(iss) if iss != provider.issuer => return Err(Denial::WrongIssuer),
        Some(_) => {}
        None => {
            claims.insert("iss".into(), Value::String(provider.issuer.clone()));
        }
    }
    let cap = cx.now.saturating_add(intro.cache_seconds);
    let exp = numeric_date(&claims, "exp")?;
    if exp.is_none() {
        // No `exp`: the answer holds for the cache time only.
        claims.insert("exp".into(), Value::from(cap));
    }
    let dies_at = exp.map_or(cap, |e| e.min(cap));
    // Checked before it is kept: a token the gateway refuses is not cached as active.
    verified(config, index, claims.clone(), token, cx.now, dies_at)?;
    if dies_at <= cx.now {
        // "Active" with an `exp` that has come (within the leeway a JWT would get): nothing to
        // keep, and an answer that cannot be kept is not used.
        return Err(Denial::Expired);
    }
    let bytes = serde_json::to_vec(&claims).map_err(|_| Denial::IntrospectionUnavailable)?;
    store(Some(&bytes), dies_at);
    Ok(())
}

/// The verification of `token` after [`complete`] stored its answer (or refused it).
pub fn after_answer(
    config: &FilterConfig,
    shared: &dyn SharedData,
    index: usize,
    token: &str,
    now: u64,
) -> Result<VerifiedToken, Denial> {
    from_cache(config, shared, index, token, now).unwrap_or(Err(Denial::IntrospectionUnavailable))
}

/// An RFC 9701 answer: a JWS by the provider's keys, `typ` `token-introspection+jwt`, `iss` the
/// provider, `aud` the gateway's client id; the answer is its `token_introspection` member.
fn jwt_answer(
    config: &FilterConfig,
    index: usize,
    intro: &Introspection,
    cx: AnswerContext<'_>,
    body: &[u8],
) -> Result<Map<String, Value>, Denial> {
    let unavailable = |_| Denial::IntrospectionUnavailable;
    let provider = config.providers.get(index).ok_or(Denial::WrongIssuer)?;
    let text = std::str::from_utf8(body)
        .map_err(|_| Denial::IntrospectionUnavailable)?
        .trim();
    let jws = crate::jose::jws::parse(text).map_err(unavailable)?;
    if !provider.algorithms.contains(&jws.header.alg) {
        return Err(Denial::IntrospectionUnavailable);
    }
    let typ = jws.header.typ.as_deref().unwrap_or("");
    if !typ.eq_ignore_ascii_case("token-introspection+jwt")
        && !typ.eq_ignore_ascii_case(JWT_ANSWER_TYPE)
    {
        return Err(Denial::IntrospectionUnavailable);
    }
    let message = jws.signing_input.as_bytes();
    let mut candidates = cx
        .keys
        .candidates(jws.header.kid.as_deref(), jws.header.alg)
        .peekable();
    if candidates.peek().is_none() {
        // Perhaps the provider rotated its keys: the glue asks for an early (throttled) fetch.
        return Err(Denial::UnknownKey);
    }
    let signed =
        candidates.any(|k| verify_jwk(cx.native, jws.header.alg, k, message, &jws.signature));
    if !signed {
        return Err(Denial::IntrospectionUnavailable);
    }
    let claims = jws.claims;
    if optional_string(&claims, "iss").map_err(unavailable)? != Some(provider.issuer.as_str()) {
        return Err(Denial::IntrospectionUnavailable);
    }
    check_audience(&claims, std::slice::from_ref(&intro.client.client_id)).map_err(unavailable)?;
    match claims.get("token_introspection") {
        Some(Value::Object(answer)) => Ok(answer.clone()),
        _ => Err(Denial::IntrospectionUnavailable),
    }
}
