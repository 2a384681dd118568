//! The gateway's Back-Channel Logout receiver (OIDC Back-Channel Logout 1.0): the configured path
//! where a provider POSTs `logout_token`, answered by the filter and never forwarded. Both host
//! glues call [`check_request`] on the request's headers, collect the body, and call [`receive`].
//!
//! A valid token becomes a **cut-off** at its `iat` ([`crate::shared_state::denylist`]): the session it names
//! (or, without `sid`, every session of its subject) is refused for tokens issued at or before
//! that time, on every worker, and a later login passes. The order protects what is stored:
//! 1. cheap checks first (method, content type, size, form, a provider that accepts logout tokens
//!    from this issuer), then a per-worker budget of signature checks, so a flood of bogus tokens
//!    costs at most `max_verifications_per_second` signature checks a second;
//! 2. the token's §2.6 checks ([`crate::logout::backchannel::validate_logout_token`]);
//! 3. the cut-off is stored (the caller's `store`; a refusal answers 503 so the provider may
//!    retry, and nothing else was written);
//! 4. only then its `jti` is remembered (the DPoP replay cache, in a name space of its own): a
//!    replayed token is refused with 400 (its cut-off, stored again, changes nothing);
//! 5. for a provider whose revocations go through a revocation hub ([`crate::config::hub`]) the
//!    token is forwarded to the hub as it came instead, and the hub's verdict is the answer: the
//!    hub validates it again, remembers its `jti`, stores it durably, and publishes the cut-off to
//!    every gateway. (A replay that reaches this gateway only stores the same cut-off again.)
//!
//! 200 with `Cache-Control: no-store` on success, 400 `{"error": "invalid_request", ...}` on any
//! refusal (BCL §2.8), and nothing changes on a refusal.

use crate::admission::token_sources::header_values;
use crate::callout::{CalloutRequest, FORM};
use crate::config::FilterConfig;
use crate::config::backchannel::BackchannelLogout;
use crate::config::services::form_encode;
use crate::http::request_path::normalise;
use crate::jose::jwk::KeySet;
use crate::jose::signature::NativeVerifier;
use crate::logout::backchannel::{
    LogoutEvent, LogoutTokenError, LogoutTokenPolicy, error_body, logout_token_from_form,
    unverified_issuer, validate_logout_token,
};
use crate::shared_state::SharedData;
use crate::shared_state::denylist::CutoffKind;
use crate::shared_state::denylist_store::Revocation;
use crate::validation::dpop::replay::{self, ReplayError};
use serde_json::json;

/// The answer to the provider, and the counter it is counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverAnswer {
    pub status: u32,
    /// JSON (empty on success).
    pub body: String,
    /// Extra headers besides `cache-control: no-store` and the content type.
    pub headers: Vec<(&'static str, String)>,
    pub counter: &'static str,
}

impl ReceiverAnswer {
    fn refused(e: LogoutTokenError) -> ReceiverAnswer {
        ReceiverAnswer {
            status: 400,
            body: error_body(e),
            headers: Vec::new(),
            counter: "backchannel_logout_refused",
        }
    }

    fn invalid(status: u32, description: &str) -> ReceiverAnswer {
        ReceiverAnswer {
            status,
            body: json!({"error": "invalid_request", "error_description": description}).to_string(),
            headers: Vec::new(),
            counter: "backchannel_logout_refused",
        }
    }

    /// 503 `temporarily_unavailable` with `Retry-After: 1`: the OP delivers the token again.
    pub fn unavailable(description: &str) -> ReceiverAnswer {
        ReceiverAnswer {
            status: 503,
            body: json!({"error": "temporarily_unavailable", "error_description": description})
                .to_string(),
            headers: vec![("retry-after", "1".to_owned())],
            counter: "backchannel_logout_unavailable",
        }
    }
}

/// Whether `path` is the configured back-channel logout path (compared after the normalisation
/// rules see, like the logout path).
pub fn is_backchannel_path(config: &FilterConfig, path: &str) -> bool {
    config
        .backchannel_logout
        .as_ref()
        .is_some_and(|b| normalise(path).is_ok_and(|n| n.path == b.path.as_str()))
}

/// The checks made on the request's headers, before its body is read: `POST`, a form body, a
/// declared length within the bound.
pub fn check_request(
    settings: &BackchannelLogout,
    method: &str,
    headers: &[(&str, &str)],
) -> Result<(), ReceiverAnswer> {
    if method != "POST" {
        let mut answer = ReceiverAnswer::invalid(405, "use POST");
        answer.headers.push(("allow", "POST".to_owned()));
        return Err(answer);
    }
    let content_type = header_values(headers, "content-type").next().unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(ReceiverAnswer::invalid(
            400,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let declared = header_values(headers, "content-length")
        .next()
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > settings.max_body_bytes) {
        return Err(too_large());
    }
    Ok(())
}

fn too_large() -> ReceiverAnswer {
    ReceiverAnswer::invalid(400, "the request body is too large")
}

/// Whether a body of `size` bytes (so far) is over the bound: refuse without reading more.
pub fn body_too_large(settings: &BackchannelLogout, size: usize) -> Option<ReceiverAnswer> {
    (size > settings.max_body_bytes).then(too_large)
}

/// One worker's budget of logout-token signature checks: `max_verifications_per_second` per
/// wall-clock second.
#[derive(Debug, Default)]
pub struct VerificationBudget {
    second: u64,
    used: u32,
}

impl VerificationBudget {
    fn take(&mut self, now: u64, per_second: u32) -> bool {
        if self.second != now {
            self.second = now;
            self.used = 0;
        }
        if self.used >= per_second {
            return false;
        }
        self.used += 1;
        true
    }
}

/// What the receiver needs of the gateway's state.
#[derive(Clone, Copy)]
pub struct ReceiverContext<'a> {
    /// Each provider's keys (`keys[i]` for provider `i`).
    pub keys: &'a [&'a KeySet],
    pub now: u64,
    pub native: Option<&'a dyn NativeVerifier>,
    /// Where logout-token `jti`s are remembered (the DPoP replay cache's shared data).
    pub replay: &'a dyn SharedData,
}

/// What the glue does with a back-channel logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Answer the provider now.
    Answer(ReceiverAnswer),
    /// The cut-off is stored here; send this to the hub and answer with [`hub_verdict`].
    Forward(CalloutRequest),
}

/// Handles a complete request body. `store` records the cut-off in the shared denylist and says
/// whether it was stored; it is called only for a valid token, before the `jti` is remembered.
pub fn receive(
    config: &FilterConfig,
    cx: ReceiverContext<'_>,
    body: &[u8],
    budget: &mut VerificationBudget,
    store: impl FnOnce(&Revocation) -> bool,
) -> Received {
    let Some(settings) = &config.backchannel_logout else {
        return Received::Answer(ReceiverAnswer::invalid(404, "no back-channel logout here"));
    };
    if let Some(answer) = body_too_large(settings, body.len()) {
        return Received::Answer(answer);
    }
    let (event, token, index) = match validated(config, settings, cx, body, budget) {
        Ok(valid) => valid,
        Err(answer) => return Received::Answer(answer),
    };
    let Some(provider) = config.providers.get(index) else {
        return Received::Answer(ReceiverAnswer::refused(LogoutTokenError::WrongIssuer));
    };
    let forget_at = event
        .iat
        .saturating_add(provider.max_token_lifetime_seconds);
    let cutoff = match (&event.sid, &event.sub) {
        (Some(sid), _) => Revocation::cutoff(
            CutoffKind::Session,
            &event.issuer,
            sid,
            event.iat,
            forget_at,
        ),
        (None, Some(sub)) => Revocation::cutoff(
            CutoffKind::Subject,
            &event.issuer,
            sub,
            event.iat,
            forget_at,
        ),
        (None, None) => {
            return Received::Answer(ReceiverAnswer::refused(LogoutTokenError::MissingSubject));
        }
    };
    if !store(&cutoff) {
        return Received::Answer(ReceiverAnswer::unavailable(
            "the logout could not be stored; retry",
        ));
    }
    if let Some(hub) = config.hub.as_ref().filter(|h| h.federates(index)) {
        return Received::Forward(CalloutRequest::post(
            &hub.backchannel_logout,
            FORM,
            None,
            format!("logout_token={}", form_encode(&token)).into_bytes(),
        ));
    }
    let remembered_until = event
        .exp
        .unwrap_or(0)
        .max(event.iat.saturating_add(settings.max_token_age_seconds))
        .saturating_add(provider.leeway_seconds);
    let hash = replay::proof_hash(&format!("logout-token {}", event.issuer), &event.jti);
    Received::Answer(
        match replay::record(
            cx.replay,
            hash,
            remembered_until,
            cx.now,
            config.dpop_replay_cache_entries,
        ) {
            Ok(()) => ReceiverAnswer {
                status: 200,
                body: String::new(),
                headers: Vec::new(),
                counter: "backchannel_logout_ok",
            },
            Err(ReplayError::Replayed) => ReceiverAnswer::refused(LogoutTokenError::Replayed),
            // The cut-off holds; the token could not be remembered, so a replay would be accepted
            // again, which only stores the same cut-off again.
            Err(ReplayError::Full | ReplayError::Unavailable) => ReceiverAnswer {
                status: 200,
                body: String::new(),
                headers: Vec::new(),
                counter: "backchannel_logout_ok_unremembered",
            },
        },
    )
}

/// The answer to the provider once the hub answered a forwarded token (`status` `None`: no
/// answer): the hub's 200 or 400 (its body, when it is an error object), else 503 so the provider
/// may retry.
pub fn hub_verdict(status: Option<u32>, body: &[u8]) -> ReceiverAnswer {
    match status {
        Some(200..=299) => ReceiverAnswer {
            status: 200,
            body: String::new(),
            headers: Vec::new(),
            counter: "backchannel_logout_ok",
        },
        Some(400) => {
            let error = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .filter(|v| v.get("error").is_some_and(serde_json::Value::is_string));
            match error {
                Some(v) => ReceiverAnswer {
                    status: 400,
                    body: v.to_string(),
                    headers: Vec::new(),
                    counter: "backchannel_logout_refused",
                },
                None => ReceiverAnswer::invalid(400, "the revocation hub refused the logout token"),
            }
        }
        _ => ReceiverAnswer::unavailable("the revocation hub did not take the logout; retry"),
    }
}

/// The form, the provider, the budget and the §2.6 checks: the event, the token, and the index
/// of its provider.
fn validated(
    config: &FilterConfig,
    settings: &BackchannelLogout,
    cx: ReceiverContext<'_>,
    body: &[u8],
    budget: &mut VerificationBudget,
) -> Result<(LogoutEvent, String, usize), ReceiverAnswer> {
    let token = logout_token_from_form(body).map_err(ReceiverAnswer::refused)?;
    let issuer = unverified_issuer(&token).ok_or(ReceiverAnswer::refused(
        LogoutTokenError::Malformed("not a compact JWS naming its issuer"),
    ))?;
    let (index, provider) = config
        .providers
        .iter()
        .enumerate()
        .find(|(_, p)| p.issuer == issuer && !p.backchannel_audiences.is_empty())
        .ok_or(ReceiverAnswer::refused(LogoutTokenError::WrongIssuer))?;
    if !budget.take(cx.now, settings.max_verifications_per_second) {
        let mut answer = ReceiverAnswer::unavailable("too many logout tokens; retry");
        answer.status = 429;
        answer.counter = "backchannel_logout_throttled";
        return Err(answer);
    }
    let keys = cx
        .keys
        .get(index)
        .copied()
        .ok_or(ReceiverAnswer::refused(LogoutTokenError::NoKeys))?;
    let policy = LogoutTokenPolicy {
        issuer: &provider.issuer,
        audiences: &provider.backchannel_audiences,
        algorithms: &provider.algorithms,
        leeway_seconds: provider.leeway_seconds,
        max_age_seconds: settings.max_token_age_seconds,
    };
    let event = validate_logout_token(&policy, keys, &token, cx.now, cx.native)
        .map_err(ReceiverAnswer::refused)?;
    Ok((event, token, index))
}
