//! The request path, in two steps so that Envoy's header buffers are only read while no header is
//! being changed: [`plan`] reads the headers and asks the core for a decision (owning everything
//! it returns), then [`execute`] applies it through the [`Stream`].
//!
//! The verified-token cache is per worker thread (as per Wasm VM in the Wasm module), emptied when
//! the shared keys change.

use crate::host::Stream;
use crate::logout_flow::LogoutFlow;
use crate::shared::Gateway;
use filter::admission::gateway::{
    Knowledge, Outcome, RequestInfo, decide, denial_response, find_request_token,
    logout_introspection, logout_subject, unverified_issuer,
};
use filter::admission::token_cache::TokenCache;
use filter::http::denial::{Denial, DpopDenial};
use filter::jose::jwk::KeySet;
use filter::logout::backchannel_receiver::{check_request, is_backchannel_path};
use filter::logout::{LogoutResponse, is_logout_path};
use filter::validation::verified_token::VerifiedToken;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// What the hook tells Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// A local reply was sent.
    Stop,
    /// A logout is running: hold the request (and its body) until it answers.
    StopAndBuffer,
    /// A back-channel logout: hold the request while its body arrives (the body hook answers).
    CollectBody,
}

/// What to do with a request, decided from its headers.
#[derive(Debug)]
pub enum Plan {
    Forward {
        /// Inbound copies of the claim headers (a client cannot forge them).
        remove: Vec<String>,
        /// The verified token, whose claim headers are added (rendered once, when it was cached).
        token: Option<Rc<VerifiedToken>>,
        /// `:path` and `cookie` when the core rewrote them.
        set: Vec<(String, String)>,
        /// The token's header, when its provider does not forward tokens.
        /// Headers the core asks to remove (the token's, when not forwarded), before `set`.
        remove_headers: Vec<String>,
        counts: Vec<(&'static str, u64)>,
    },
    Reply {
        status: u32,
        headers: Vec<(&'static str, String)>,
        content_type: &'static str,
        body: String,
        counts: Vec<(&'static str, u64)>,
    },
    Logout {
        token: String,
        verified: Box<VerifiedToken>,
        already_revoked: bool,
    },
    /// The back-channel logout path, its headers checked: collect the body.
    Backchannel,
    /// The token must be introspected first (see [`crate::introspection_flow`]).
    Introspect {
        provider: usize,
        token: String,
        counts: Vec<(&'static str, u64)>,
    },
}

/// A worker thread's own state for one configuration.
struct WorkerState {
    cache: TokenCache,
    /// The key generation the cache was filled under.
    generation: u64,
}

thread_local! {
    static WORKERS: RefCell<HashMap<u64, WorkerState>> = RefCell::new(HashMap::new());
}

/// A header name or value as text: borrowed when it is UTF-8, else with its non-ASCII bytes read
/// as `?` (such a value is never a token, and its header is still seen — and removed when it is
/// one the filter sets), as the Wasm glue reads them.
pub fn header_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(
            bytes
                .iter()
                .map(|&b| if b.is_ascii() { b as char } else { '?' })
                .collect(),
        ),
    }
}

/// The answer to a refused request, as a plan.
pub fn deny_plan(gw: &Gateway, headers: &[(&str, &str)], denial: &Denial) -> Plan {
    deny(gw, headers, denial, Vec::new())
}

fn deny(
    gw: &Gateway,
    headers: &[(&str, &str)],
    denial: &Denial,
    mut counts: Vec<(&'static str, u64)>,
) -> Plan {
    if let Denial::Dpop(DpopDenial::ReplayCacheFull | DpopDenial::ReplayCacheError) = denial {
        crate::log::log(
            crate::log::Level::Error,
            &format!(
                "oauth2-gateway: DPoP replay cache cannot take a proof ({denial:?}): DPoP requests are refused (fail closed); raise dpop_replay_cache_entries"
            ),
        );
    } else if *denial == Denial::RevocationsNotLoaded {
        if gw.first_not_loaded_warning() {
            crate::log::log(
                crate::log::Level::Warn,
                "oauth2-gateway: the revocation feed has not been read up to date yet: tokens are refused with 503 until it has (revocation_feed.require_initial_sync)",
            );
        }
    } else {
        crate::log::log(
            crate::log::Level::Debug,
            &format!("oauth2-gateway: request denied: {denial:?}"),
        );
    }
    counts.push((denial_counter(denial), 1));
    let response = denial_response(&gw.config, headers, denial);
    let retry_after = response.retry_after();
    Plan::Reply {
        status: response.status,
        headers: response
            .www_authenticate
            .map(|c| ("www-authenticate", c))
            .into_iter()
            .chain(retry_after.map(|r| ("retry-after", r.to_owned())))
            .collect(),
        content_type: "text/plain; charset=utf-8",
        body: response.body.to_owned(),
        counts,
    }
}

/// `denied.<reason>` as a static name (the counters are defined up front).
fn denial_counter(denial: &Denial) -> &'static str {
    let name = format!("denied.{}", denial.metric_name());
    crate::metrics::NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("denied.malformed")
}

/// Decides about a request from its headers.
pub fn plan(gw: &Gateway, headers: &[(&str, &str)], now_ms: u64) -> Plan {
    let config = &gw.config;
    let value = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let method = value(":method").unwrap_or("");
    let path = value(":path").unwrap_or("/");
    // Before the denylist: once set, the snapshot loaded next holds what the feed brought.
    let revocations_loaded = gw.revocations_loaded();
    let keys = gw.keys();
    let denylist = gw.denylist();
    let sets: Vec<&KeySet> = keys.sets.iter().collect();
    let knowledge = Knowledge {
        keys: &sets,
        denylist: &denylist,
        now: now_ms / 1_000,
        revocations_loaded,
        native: Some(&keys.parsed),
        replay: &gw.replay,
    };

    if let Some(settings) = &config.backchannel_logout
        && is_backchannel_path(config, path)
    {
        return match check_request(settings, method, headers) {
            Ok(()) => Plan::Backchannel,
            Err(answer) => Plan::Reply {
                status: answer.status,
                headers: answer.headers,
                content_type: "application/json",
                body: answer.body,
                counts: vec![(answer.counter, 1)],
            },
        };
    }

    if is_logout_path(config, path) {
        if method != "POST" {
            return Plan::Reply {
                status: 405,
                headers: vec![("allow", "POST".to_owned())],
                content_type: "text/plain; charset=utf-8",
                body: "use POST\n".to_owned(),
                counts: Vec::new(),
            };
        }
        // An opaque token this gateway has no answer for: asked about first, then the logout.
        if let Some((provider, token)) = logout_introspection(config, knowledge, path, headers) {
            return Plan::Introspect {
                provider,
                token,
                counts: Vec::new(),
            };
        }
        return match logout_subject(config, knowledge, path, headers) {
            Ok((token, verified, already_revoked)) => Plan::Logout {
                token: token.to_owned(),
                verified: Box::new(verified),
                already_revoked,
            },
            Err(denial) => deny(gw, headers, &denial, Vec::new()),
        };
    }

    let request = RequestInfo {
        method,
        path,
        headers,
    };
    let (outcome, hits, misses) = WORKERS.with(|workers| {
        let mut workers = workers.borrow_mut();
        let state = workers.entry(gw.id).or_insert_with(|| WorkerState {
            cache: TokenCache::new(config.cache_max_entries),
            generation: keys.generation,
        });
        if state.generation != keys.generation {
            // New keys (or a key removed): cached verifications may no longer hold.
            state.cache.clear();
            state.generation = keys.generation;
        }
        let outcome = decide(config, knowledge, request, &mut state.cache);
        let (hits, misses) = state.cache.take_stats();
        (outcome, hits, misses)
    });
    let mut counts = Vec::with_capacity(3);
    counts.extend([("cache_hit", hits), ("cache_miss", misses)]);
    match outcome {
        Outcome::Forward {
            headers: set,
            remove_headers,
            token,
        } => {
            counts.push(("allowed", 1));
            Plan::Forward {
                remove: config
                    .claim_headers
                    .iter()
                    .filter(|(name, _)| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)))
                    .map(|(name, _)| name.clone())
                    .collect(),
                token,
                set,
                remove_headers,
                counts,
            }
        }
        Outcome::Deny(denial) => {
            if denial == Denial::UnknownKey {
                // Perhaps the IDP rotated its keys: ask for an early (throttled) JWKS fetch.
                if let Some(provider) = find_request_token(config, path, headers)
                    .ok()
                    .flatten()
                    .and_then(|found| unverified_issuer(found.token))
                    .and_then(|iss| gw.provider_of(&iss))
                {
                    gw.request_early_refresh(provider);
                }
            }
            deny(gw, headers, &denial, counts)
        }
        Outcome::Introspect { provider, token } => Plan::Introspect {
            provider,
            token,
            counts,
        },
    }
}

/// Applies a plan; returns what to tell Envoy and, for a logout, the running sequence.
pub fn execute(
    gw: &Gateway,
    stream: &mut impl Stream,
    plan: Plan,
    now_ms: u64,
) -> (Next, Option<LogoutFlow>) {
    match plan {
        Plan::Forward {
            remove,
            token,
            set,
            remove_headers,
            counts,
        } => {
            // Removals first: `set` may put back a header the core rewrote (`:path`, `cookie`).
            for name in remove.iter().chain(&remove_headers) {
                stream.set_request_header(name, None);
            }
            for (name, value) in token.iter().flat_map(|t| &t.claim_headers) {
                stream.add_request_header(name, value);
            }
            for (name, value) in &set {
                stream.set_request_header(name, Some(value));
            }
            count_all(stream, &counts);
            (Next::Continue, None)
        }
        Plan::Reply {
            status,
            headers,
            content_type,
            body,
            counts,
        } => {
            count_all(stream, &counts);
            reply(stream, status, &headers, content_type, &body);
            (Next::Stop, None)
        }
        Plan::Logout {
            token,
            verified,
            already_revoked,
        } => match LogoutFlow::start(gw, stream, &token, &verified, already_revoked, now_ms) {
            Ok(flow) => (Next::StopAndBuffer, Some(flow)),
            Err(response) => {
                answer_logout(stream, &response);
                (Next::Stop, None)
            }
        },
        Plan::Backchannel => (Next::CollectBody, None),
        // Started by the glue, which holds the request's headers (see `introspection_flow`).
        Plan::Introspect { counts, .. } => {
            count_all(stream, &counts);
            (Next::StopAndBuffer, None)
        }
    }
}

fn count_all(stream: &mut impl Stream, counts: &[(&'static str, u64)]) {
    for (name, n) in counts {
        if *n > 0 {
            stream.count(name, *n);
        }
    }
}

fn reply(
    stream: &mut impl Stream,
    status: u32,
    headers: &[(&'static str, String)],
    content_type: &str,
    body: &str,
) {
    // An empty body has no type (Envoy drops it from such a local reply anyway).
    let mut all = vec![("cache-control", "no-store")];
    if !body.is_empty() {
        all.push(("content-type", content_type));
    }
    all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
    stream.send_response(status, &all, body.as_bytes());
}

/// Answers a logout (and counts it).
pub fn answer_logout(stream: &mut impl Stream, response: &LogoutResponse) {
    let outcome = if response.status == 200 {
        "logout_ok"
    } else {
        "logout_failed"
    };
    stream.count(outcome, 1);
    reply(
        stream,
        response.status,
        &[],
        "application/json",
        &response.body,
    );
}

/// The answer when the module itself failed (a caught panic): closed, 503.
pub fn fail_closed(stream: &mut impl Stream) {
    reply(
        stream,
        503,
        &[],
        "text/plain; charset=utf-8",
        "gateway error\n",
    );
}
