//! Where a provider's tokens may be, as configured. Finding them in a request is
//! [`crate::admission::token_sources`].

use super::error::{ConfigError, err, validate_header_name};
use serde::Deserialize;

/// One place a token may be: exactly one of `header` (with an optional `prefix`), `query` or
/// `cookie`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("oneOf" = [
        {"required": ["header"], "properties": {"header": {"type": "string"}, "query": {"type": "null"}, "cookie": {"type": "null"}}},
        {"required": ["query"], "properties": {"query": {"type": "string"}, "header": {"type": "null"}, "cookie": {"type": "null"}, "prefix": {"type": "null"}}},
        {"required": ["cookie"], "properties": {"cookie": {"type": "string"}, "header": {"type": "null"}, "query": {"type": "null"}, "prefix": {"type": "null"}}}
    ]))
)]
pub struct RawTokenSource {
    /// A request header (letters, digits, `-`, `_`; any case). `authorization` only with the
    /// prefix "Bearer " (the strict RFC 6750 reading); not `host`, `cookie`, `content-length` or
    /// `transfer-encoding` (checked by the filter).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::TOKEN_HEADER)))]
    pub header: Option<String>,
    /// For `header`: text before the token, e.g. "Bearer " (case-insensitive).
    #[serde(default)]
    pub prefix: Option<String>,
    /// A query parameter (letters, digits, `.`, `_`, `-`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::TOKEN_PARAMETER)))]
    pub query: Option<String>,
    /// A cookie (letters, digits, `.`, `_`, `-`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::TOKEN_PARAMETER)))]
    pub cookie: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`, parsed strictly (RFC 6750 §2.1).
    AuthorizationBearer,
    Header {
        name: String,
        prefix: String,
    },
    Query(String),
    Cookie(String),
}

pub fn default_sources() -> Vec<TokenSource> {
    vec![TokenSource::AuthorizationBearer]
}

impl RawTokenSource {
    pub fn validate(self, at: &str) -> Result<TokenSource, ConfigError> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        match (self.header, self.query, self.cookie) {
            (Some(h), None, None) => {
                let h = h.to_ascii_lowercase();
                let prefix = self.prefix.unwrap_or_default();
                if h == "authorization" {
                    if prefix.trim().eq_ignore_ascii_case("bearer") {
                        return Ok(TokenSource::AuthorizationBearer);
                    }
                    return Err(err(
                        format!("{at}.prefix"),
                        "the authorization header only carries \"Bearer \" tokens",
                    ));
                }
                validate_header_name(&h).map_err(|m| err(format!("{at}.header"), m))?;
                Ok(TokenSource::Header { name: h, prefix })
            }
            (None, Some(q), None) if self.prefix.is_none() && name_ok(&q) => {
                Ok(TokenSource::Query(q))
            }
            (None, None, Some(c)) if self.prefix.is_none() && name_ok(&c) => {
                Ok(TokenSource::Cookie(c))
            }
            _ => Err(err(
                at,
                "name exactly one of header (with an optional prefix), query or cookie, with a valid name",
            )),
        }
    }
}
