//! Why a request was refused, and the one place that maps a reason to an HTTP answer
//! (RFC 6750 §3) and to a metric name. Bodies never carry token details.

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
}

/// What the glue sends back for a denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenialResponse {
    pub status: u32,
    pub www_authenticate: Option<String>,
    pub body: &'static str,
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
        }
    }

    pub fn response(&self, realm: &str) -> DenialResponse {
        let challenge = |error: Option<(&str, &str)>, scope: Option<&str>| {
            let mut v = format!("Bearer realm=\"{}\"", quote(realm));
            if let Some((code, description)) = error {
                v.push_str(&format!(
                    ", error=\"{code}\", error_description=\"{description}\""
                ));
            }
            if let Some(scope) = scope {
                v.push_str(&format!(", scope=\"{}\"", quote(scope)));
            }
            Some(v)
        };
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
            Denial::Malformed(_)
            | Denial::UnsupportedAlgorithm
            | Denial::UnknownKey
            | Denial::BadSignature
            | Denial::Expired
            | Denial::NotYetValid
            | Denial::WrongIssuer
            | Denial::WrongAudience
            | Denial::WrongType
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
            _ => "the access token is invalid",
        }
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
}
