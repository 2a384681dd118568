//! The decision for one request, from its method, path and `Authorization` headers: which rule
//! applies, whether a token is needed, and what to forward. The glue executes the outcome.

use crate::bearer::bearer_token;
use crate::claim_headers::claim_headers;
use crate::config::FilterConfig;
use crate::denial::Denial;
use crate::jwk::KeySet;
use crate::policy::{Action, rule_for};
use crate::validate::validate;
use crate::verified::VerifiedToken;

/// What the gateway sees of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub authorization: &'a [&'a str],
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Send the request upstream with these claim headers; `token` is `None` when the route lets
    /// it through without one.
    Forward {
        headers: Vec<(String, String)>,
        remove_authorization: bool,
        token: Option<Box<VerifiedToken>>,
    },
    Deny(Denial),
}

/// Decides about one request. `keys[i]` are the current keys of provider `i`; `now` is Unix
/// seconds.
pub fn decide(
    config: &FilterConfig,
    keys: &[&KeySet],
    request: RequestInfo<'_>,
    now: u64,
) -> Outcome {
    let rule = rule_for(&config.rules, request.method, request.path);
    if rule.action == Action::Bypass {
        return forward_anonymous();
    }
    let token = match bearer_token(request.authorization) {
        Ok(Some(token)) => token,
        Ok(None) if rule.action == Action::AllowMissing => return forward_anonymous(),
        Ok(None) => return Outcome::Deny(Denial::Missing),
        Err(denial) => return Outcome::Deny(denial),
    };
    let verified = match validate(config, keys, token, now) {
        Ok(v) => v,
        Err(denial) => return Outcome::Deny(denial),
    };
    let Some(provider) = config.providers.get(verified.provider) else {
        return Outcome::Deny(Denial::WrongIssuer);
    };
    if let Err(denial) = rule.authorise(&verified, &provider.name) {
        return Outcome::Deny(denial);
    }
    Outcome::Forward {
        headers: claim_headers(
            &verified,
            &config.claim_headers,
            &config.claim_header_separator,
        ),
        remove_authorization: !provider.forward_token,
        token: Some(Box::new(verified)),
    }
}

fn forward_anonymous() -> Outcome {
    Outcome::Forward {
        headers: Vec::new(),
        remove_authorization: false,
        token: None,
    }
}

/// The `iss` a request's token claims, unverified: only to aim an early key refresh at the right
/// provider after an unknown `kid`, never to decide anything.
pub fn unverified_issuer(authorization: &[&str]) -> Option<String> {
    let token = bearer_token(authorization).ok()??;
    let jws = crate::jws::parse(token).ok()?;
    crate::claims::optional_string(&jws.claims, "iss")
        .ok()?
        .map(str::to_owned)
}
