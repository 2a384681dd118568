//! Why a request was refused, and the one place that maps a reason to an HTTP answer
//! (RFC 6750 §3, RFC 9449 §7.1–7.2) and to a metric name. Bodies never carry token details.

/// A refusal. `&'static str` details are for debug logs only; they never reach the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No token where the route requires one (RFC 6750 §3.1: no error code in the challenge).
    Missing,
    /// More than one token, or a token in more than one place (RFC 6750 §2: invalid_request).
    MultipleTokens,
    /// A token larger than the configured limit (invalid_request).
    TooLarge,
    /// A request path that servers may read in different ways (`%2F`, `;`, …): see
    /// `request_path` (400 invalid_request).
    AmbiguousPath(&'static str),
    Malformed(&'static str),
    UnsupportedAlgorithm,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    WrongType,
    /// Claims required by a rule are missing or have other values.
    ClaimMismatch(String),
    /// The token lacks a scope the route requires; carries the required scopes.
    InsufficientScope(String),
    Revoked,
    /// No keys at all for the token's issuer: the gateway cannot judge, so it refuses (503).
    NoKeys,
    /// The revocation feed has not been read up to date yet (a fresh gateway or VM): the token
    /// may have been revoked before the gateway started, so it is refused (503) like
    /// [`Denial::NoKeys`] (see `crate::shared_state::feed_sync`).
    RevocationsNotLoaded,
    /// A DPoP (RFC 9449) presentation was refused.
    Dpop(DpopDenial),
    /// The provider's introspection endpoint says the token is not active (RFC 7662 §2.2).
    Inactive,
    /// The token must be introspected and the provider did not answer usably (down, slow, an
    /// error): 503 with `Retry-After`, never a stale positive answer.
    IntrospectionUnavailable,
}

/// Why a DPoP presentation was refused: the proof (RFC 9449 §4.3) or the scheme and binding
/// (§7.1, §7.2). Each has its own counter, `denied.dpop_<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopDenial {
    /// `Authorization: DPoP` without a `DPoP` header.
    MissingProof,
    /// More than one `DPoP` header (or one listing several).
    MultipleProofs,
    /// Not a compact JWS, wrong `typ`, a required claim missing or of the wrong type.
    MalformedProof(&'static str),
    /// `alg` is not one of the provider's proof algorithms (never `none` or HMAC).
    BadAlgorithm,
    /// The header's `jwk` is missing, unusable, private, or not of the `alg`'s type.
    BadKey(&'static str),
    /// The proof is not signed by its own `jwk`.
    BadSignature,
    /// The proof's key is not the one the token is bound to (`cnf.jkt`).
    KeyMismatch,
    WrongMethod,
    /// `htu` is not this request's URI (or carries a query or fragment).
    WrongUri,
    /// `iat` older than the window allows.
    Stale,
    /// `iat` in the future beyond the leeway.
    Future,
    /// `ath` missing or not the hash of the access token.
    WrongTokenHash,
    /// The proof's `jti` was seen before within its window on this gateway.
    Replayed,
    /// The replay cache had no room for the proof's `jti`: refused (fail closed, 503).
    ReplayCacheFull,
    /// The replay cache could not be written (shared data refused it): refused (503).
    ReplayCacheError,
    /// A DPoP-bound token presented as a bearer token (downgrade, §7.2).
    BoundTokenAsBearer,
    /// A bearer token where the provider requires DPoP.
    BearerNotAccepted,
    /// The `DPoP` scheme with a token that is not DPoP-bound.
    UnboundToken,
    /// The `DPoP` scheme for a provider with DPoP disabled.
    SchemeNotAccepted,
}

impl DpopDenial {
    pub fn metric_name(self) -> &'static str {
        match self {
            DpopDenial::MissingProof => "dpop_missing_proof",
            DpopDenial::MultipleProofs => "dpop_multiple_proofs",
            DpopDenial::MalformedProof(_) => "dpop_malformed_proof",
            DpopDenial::BadAlgorithm => "dpop_bad_algorithm",
            DpopDenial::BadKey(_) => "dpop_bad_key",
            DpopDenial::BadSignature => "dpop_bad_signature",
            DpopDenial::KeyMismatch => "dpop_key_mismatch",
            DpopDenial::WrongMethod => "dpop_wrong_htm",
            DpopDenial::WrongUri => "dpop_wrong_htu",
            DpopDenial::Stale => "dpop_stale",
            DpopDenial::Future => "dpop_future",
            DpopDenial::WrongTokenHash => "dpop_wrong_ath",
            DpopDenial::Replayed => "dpop_replayed",
            DpopDenial::ReplayCacheFull => "dpop_replay_cache_full",
            DpopDenial::ReplayCacheError => "dpop_replay_cache_error",
            DpopDenial::BoundTokenAsBearer => "dpop_bound_token_as_bearer",
            DpopDenial::BearerNotAccepted => "dpop_required",
            DpopDenial::UnboundToken => "dpop_unbound_token",
            DpopDenial::SchemeNotAccepted => "dpop_disabled",
        }
    }

    /// The error code and description a client sees; the scheme whose challenge carries it
    /// (`None`: the scheme the request used).
    fn error(self) -> (&'static str, &'static str, Option<Scheme>) {
        let proof = |d| ("invalid_dpop_proof", d, Some(Scheme::Dpop));
        match self {
            DpopDenial::MissingProof => proof("a DPoP proof is required"),
            DpopDenial::MultipleProofs => proof("exactly one DPoP proof is required"),
            DpopDenial::MalformedProof(_) => proof("the DPoP proof is malformed"),
            DpopDenial::BadAlgorithm => proof("the DPoP proof's algorithm is not accepted"),
            DpopDenial::BadKey(_) => proof("the DPoP proof's key is not acceptable"),
            DpopDenial::BadSignature => proof("the DPoP proof's signature is invalid"),
            DpopDenial::WrongMethod => proof("the DPoP proof is for another method"),
            DpopDenial::WrongUri => proof("the DPoP proof is for another URI"),
            DpopDenial::Stale => proof("the DPoP proof is too old"),
            DpopDenial::Future => proof("the DPoP proof is issued in the future"),
            DpopDenial::WrongTokenHash => proof("the DPoP proof is for another access token"),
            DpopDenial::Replayed => proof("the DPoP proof was used before"),
            DpopDenial::ReplayCacheFull | DpopDenial::ReplayCacheError => {
                proof("the DPoP proof cannot be checked now")
            }
            DpopDenial::KeyMismatch => (
                "invalid_token",
                "the DPoP proof's key is not the key the access token is bound to",
                Some(Scheme::Dpop),
            ),
            DpopDenial::UnboundToken => (
                "invalid_token",
                "the access token is not DPoP-bound",
                Some(Scheme::Dpop),
            ),
            DpopDenial::BoundTokenAsBearer => (
                "invalid_token",
                "the access token is DPoP-bound: use the DPoP scheme with a proof",
                Some(Scheme::Bearer),
            ),
            DpopDenial::BearerNotAccepted => (
                "invalid_token",
                "a DPoP-bound access token is required",
                Some(Scheme::Bearer),
            ),
            DpopDenial::SchemeNotAccepted => (
                "invalid_token",
                "the DPoP scheme is not accepted for this access token",
                Some(Scheme::Dpop),
            ),
        }
    }
}

/// The authentication scheme a request used (or would have: a token from another place is a
/// bearer token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

/// What the gateway's challenges offer (RFC 9449 §7.2): the realm, the `Bearer` scheme (unless
/// every provider requires DPoP) and the `DPoP` scheme with its proof algorithms (when some
/// provider accepts it).
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    pub realm: &'a str,
    pub bearer: bool,
    pub dpop_algs: Option<&'a str>,
}

/// What the glue sends back for a denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenialResponse {
    pub status: u32,
    pub www_authenticate: Option<String>,
    pub body: &'static str,
}

impl DenialResponse {
    /// The `Retry-After` header a 503 carries (seconds): the gateway cannot judge the token right
    /// now, and a retry shortly may succeed.
    pub fn retry_after(&self) -> Option<&'static str> {
        (self.status == 503).then_some("1")
    }
}

impl Denial {
    /// A short stable name, used for metrics (`denied_<name>`) and debug logs.
    pub fn metric_name(&self) -> &'static str {
        match self {
            Denial::Missing => "missing",
            Denial::MultipleTokens | Denial::TooLarge | Denial::AmbiguousPath(_) => "bad_request",
            Denial::Malformed(_) => "malformed",
            Denial::UnsupportedAlgorithm => "bad_algorithm",
            Denial::UnknownKey => "unknown_key",
            Denial::BadSignature => "bad_signature",
            Denial::Expired | Denial::NotYetValid => "expired",
            Denial::WrongIssuer => "wrong_issuer",
            Denial::WrongAudience => "wrong_audience",
            Denial::WrongType => "wrong_type",
            Denial::ClaimMismatch(_) => "claim_mismatch",
            Denial::InsufficientScope(_) => "insufficient_scope",
            Denial::Revoked => "revoked",
            Denial::NoKeys => "no_keys",
            Denial::RevocationsNotLoaded => "revocations_not_loaded",
            Denial::Dpop(d) => d.metric_name(),
            Denial::Inactive => "inactive",
            Denial::IntrospectionUnavailable => "introspection_unavailable",
        }
    }

    /// The answer with a `Bearer` challenge only (no DPoP offered).
    pub fn response(&self, realm: &str) -> DenialResponse {
        let offer = Offer {
            realm,
            bearer: true,
            dpop_algs: None,
        };
        self.answer(&offer, Scheme::Bearer)
    }

    /// The answer to a request that used `scheme`, with a challenge for each scheme `offer`
    /// names; the error goes in the challenge of the scheme the request used (RFC 9449 §7.2).
    pub fn answer(&self, offer: &Offer<'_>, scheme: Scheme) -> DenialResponse {
        let challenge = |error: Option<(&str, &str)>, scope: Option<&str>| {
            let target = match self {
                Denial::Dpop(d) => d.error().2.unwrap_or(scheme),
                _ => scheme,
            };
            Some(challenges(offer, target, error, scope))
        };
        if let Denial::Dpop(d) = self {
            let (code, description, _) = d.error();
            return match d {
                DpopDenial::ReplayCacheFull | DpopDenial::ReplayCacheError => DenialResponse {
                    status: 503,
                    www_authenticate: None,
                    body: "DPoP proofs cannot be checked right now; try again shortly\n",
                },
                _ => DenialResponse {
                    status: 401,
                    www_authenticate: challenge(Some((code, description)), None),
                    body: if code == "invalid_token" {
                        "invalid token\n"
                    } else {
                        "invalid DPoP proof\n"
                    },
                },
            };
        }
        match self {
            Denial::Missing => DenialResponse {
                status: 401,
                www_authenticate: challenge(None, None),
                body: "authentication required\n",
            },
            Denial::MultipleTokens | Denial::TooLarge => DenialResponse {
                status: 400,
                www_authenticate: challenge(
                    Some((
                        "invalid_request",
                        "the request carries an unacceptable token",
                    )),
                    None,
                ),
                body: "invalid request\n",
            },
            Denial::AmbiguousPath(_) => DenialResponse {
                status: 400,
                www_authenticate: challenge(
                    Some(("invalid_request", "the request path is ambiguous")),
                    None,
                ),
                body: "invalid request path\n",
            },
            Denial::InsufficientScope(scope) => DenialResponse {
                status: 403,
                www_authenticate: challenge(
                    Some(("insufficient_scope", "the token lacks a required scope")),
                    Some(scope),
                ),
                body: "insufficient scope\n",
            },
            Denial::ClaimMismatch(_) => DenialResponse {
                status: 403,
                www_authenticate: challenge(
                    Some(("insufficient_scope", "the token is not allowed here")),
                    None,
                ),
                body: "forbidden\n",
            },
            Denial::NoKeys => DenialResponse {
                status: 503,
                www_authenticate: None,
                body: "token keys are not available yet; try again shortly\n",
            },
            Denial::RevocationsNotLoaded => DenialResponse {
                status: 503,
                www_authenticate: None,
                body: "revoked tokens are not loaded yet; try again shortly\n",
            },
            Denial::IntrospectionUnavailable => DenialResponse {
                status: 503,
                www_authenticate: None,
                body: "the token cannot be checked with its issuer right now; try again shortly\n",
            },
            Denial::Dpop(_)
            | Denial::Malformed(_)
            | Denial::UnsupportedAlgorithm
            | Denial::UnknownKey
            | Denial::BadSignature
            | Denial::Expired
            | Denial::NotYetValid
            | Denial::WrongIssuer
            | Denial::WrongAudience
            | Denial::WrongType
            | Denial::Inactive
            | Denial::Revoked => DenialResponse {
                status: 401,
                www_authenticate: challenge(
                    Some(("invalid_token", self.client_description())),
                    None,
                ),
                body: "invalid token\n",
            },
        }
    }

    /// The coarse description a client may see: enough to act on, nothing about keys or claims.
    fn client_description(&self) -> &'static str {
        match self {
            Denial::Expired => "the access token expired",
            Denial::NotYetValid => "the access token is not valid yet",
            Denial::Revoked => "the access token was revoked",
            Denial::Inactive => "the access token is not active",
            _ => "the access token is invalid",
        }
    }
}

/// The `WWW-Authenticate` value: one challenge per offered scheme, the one carrying the error
/// first. The error goes to `target`'s challenge, or to the other one when `target` is not
/// offered.
fn challenges(
    offer: &Offer<'_>,
    target: Scheme,
    error: Option<(&str, &str)>,
    scope: Option<&str>,
) -> String {
    let realm = quote(offer.realm);
    let params = |with_error: bool| {
        let mut v = String::new();
        if with_error && let Some((code, description)) = error {
            v.push_str(&format!(
                ", error=\"{code}\", error_description=\"{description}\""
            ));
        }
        if with_error && let Some(scope) = scope {
            v.push_str(&format!(", scope=\"{}\"", quote(scope)));
        }
        v
    };
    let Some(algs) = offer.dpop_algs else {
        return format!("Bearer realm=\"{realm}\"{}", params(true));
    };
    let to_dpop = target == Scheme::Dpop || !offer.bearer;
    let dpop = format!("DPoP realm=\"{realm}\", algs=\"{algs}\"{}", params(to_dpop));
    if !offer.bearer {
        return dpop;
    }
    let bearer = format!("Bearer realm=\"{realm}\"{}", params(!to_dpop));
    if to_dpop {
        format!("{dpop}, {bearer}")
    } else {
        format!("{bearer}, {dpop}")
    }
}

/// Escapes a value for an RFC 7235 quoted-string.
fn quote(v: &str) -> String {
    v.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_token_has_no_error_code() {
        let r = Denial::Missing.response("api");
        assert_eq!(r.status, 401);
        assert_eq!(r.www_authenticate.as_deref(), Some("Bearer realm=\"api\""));
    }

    #[test]
    fn bad_tokens_are_invalid_token_without_details() {
        for d in [
            Denial::BadSignature,
            Denial::WrongAudience,
            Denial::Malformed("x"),
        ] {
            let r = d.response("api");
            assert_eq!(r.status, 401);
            let h = r.www_authenticate.unwrap();
            assert!(
                h.starts_with("Bearer realm=\"api\", error=\"invalid_token\""),
                "{h}"
            );
            assert!(!h.contains('x') || !h.contains("\"x\""));
            assert_eq!(r.body, "invalid token\n");
        }
    }

    #[test]
    fn insufficient_scope_is_403_with_scope() {
        let r = Denial::InsufficientScope("write admin".into()).response("api");
        assert_eq!(r.status, 403);
        assert!(
            r.www_authenticate
                .unwrap()
                .ends_with("scope=\"write admin\"")
        );
    }

    #[test]
    fn realm_is_quoted_safely() {
        let r = Denial::Missing.response("a\"b\\c\n");
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some(r#"Bearer realm="a\"b\\c""#)
        );
    }

    #[test]
    fn an_ambiguous_path_is_400_invalid_request() {
        let r = Denial::AmbiguousPath("x").response("api");
        assert_eq!(r.status, 400);
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some(
                "Bearer realm=\"api\", error=\"invalid_request\", error_description=\"the request path is ambiguous\""
            )
        );
    }

    #[test]
    fn no_keys_fails_closed_with_503() {
        assert_eq!(Denial::NoKeys.response("api").status, 503);
    }

    #[test]
    fn revocations_not_loaded_fails_closed_with_503_like_no_keys() {
        let r = Denial::RevocationsNotLoaded.response("api");
        assert_eq!(r.status, 503);
        // No challenge: the token is not at fault (as without keys), the gateway cannot judge it yet.
        assert_eq!(r.www_authenticate, None);
        assert_eq!(
            r.body,
            "revoked tokens are not loaded yet; try again shortly\n"
        );
        assert_eq!(
            Denial::RevocationsNotLoaded.metric_name(),
            "revocations_not_loaded"
        );
        // With DPoP offered too.
        let offer = Offer {
            realm: "api",
            bearer: true,
            dpop_algs: Some("ES256"),
        };
        let r = Denial::RevocationsNotLoaded.answer(&offer, Scheme::Dpop);
        assert_eq!((r.status, r.www_authenticate), (503, None));
    }
}
