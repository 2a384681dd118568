//! `providers[i].discovery`: the provider's keys and endpoints come from its OpenID Connect
//! Discovery document (OpenID Connect Discovery 1.0 §4), fetched through a configured cluster.
//!
//! Where a URL from the document may be reached (see [`crate::shared_state::discovery`]): only through a
//! configured cluster. A URL whose origin (scheme, host, port; default ports normalised) is the
//! **issuer's origin** goes to the discovery cluster; one whose origin is a key of `origins` goes
//! to that cluster (an entry for the issuer's origin overrides the discovery cluster). Any other
//! URL is refused. `http` URLs are allowed only on a loopback host (`localhost`, `127.0.0.0/8`,
//! `[::1]`) or when their origin is listed in `origins`; so an `http` issuer on another host
//! must list its own origin there.
//!
//! `discovery` and `jwks` together are a configuration error (one source of fetched keys);
//! `inline_jwks` may be added (inline keys first, as with `jwks`).

use super::error::{ConfigError, err};
use super::provider::{JwksSource, Provider, RawJwksSource};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// The discovery document's well-known suffix, appended to the issuer's path.
pub const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// The provider's OpenID Connect Discovery document, fetched through a cluster; its `jwks_uri`
/// (and introspection endpoint) follow. A URL of the document is reached only through the
/// discovery cluster (the issuer's origin) or a cluster listed in `origins`. The issuer must be
/// an http(s) URL without query or fragment; an `http` issuer on a host that is not loopback
/// must list its own origin in `origins` (checked by the filter).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawDiscovery {
    /// The Envoy cluster that serves the issuer's origin.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub cluster: String,
    /// The document's path (starts with `/`, no spaces). Default: the issuer's path followed by
    /// `/.well-known/openid-configuration`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH)))]
    pub path: Option<String>,
    /// The `:authority` of the requests (host[:port], no spaces). Default: the issuer's
    /// host[:port] (an OP builds its document's URLs from the Host).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::NO_SPACES)))]
    pub authority: Option<String>,
    /// Timeout of one fetch (milliseconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 10, max = 60_000), extend("default" = super::DEFAULT_HTTP_TIMEOUT_MS)))]
    pub timeout_ms: Option<u64>,
    /// How often the document and then the keys are fetched again (seconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86_400), extend("default" = super::DEFAULT_JWKS_REFRESH_SECONDS)))]
    pub refresh_seconds: Option<u64>,
    /// At least this long after a fetch before a token with an unknown `kid` may trigger an
    /// early one (seconds; at most `refresh_seconds`, which also caps the default).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86_400), extend("default" = super::DEFAULT_MIN_EARLY_REFRESH_SECONDS)))]
    pub min_early_refresh_seconds: Option<u64>,
    /// Origin (`https://login.example.com`: scheme, host, optional port, no path) → the cluster
    /// that serves it (no spaces). Each origin once (default ports normalised; checked by the
    /// filter).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend(
        "propertyNames" = {"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@]+/?$"},
        "additionalProperties" = {"type": "string", "pattern": super::error::patterns::NO_SPACES}
    )))]
    pub origins: Option<BTreeMap<String, String>>,
}

/// A validated `discovery` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Where the document is fetched and on which schedule (the keys follow it).
    pub source: JwksSource,
    /// The issuer's origin: URLs there go to `source.cluster`.
    pub issuer_origin: Origin,
    /// Other origins the document may name, each with its cluster.
    pub origins: Vec<(Origin, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// `scheme://host[:port]`, host lowercased, the port always known (defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

/// An absolute `http(s)` URL split into its origin and what goes into `:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub origin: Origin,
    /// Path and query (`/` when the URL has no path).
    pub path: String,
}

impl Origin {
    fn default_port(&self) -> bool {
        self.port
            == match self.scheme {
                Scheme::Http => 80,
                Scheme::Https => 443,
            }
    }

    /// What goes into `:authority`: the host, with the port when it is not the default.
    pub fn authority(&self) -> String {
        if self.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn is_loopback(&self) -> bool {
        let host = self.host.as_str();
        host == "localhost"
            || host == "[::1]"
            || host
                .strip_prefix("127.")
                .is_some_and(|rest| rest.split('.').all(|o| o.parse::<u8>().is_ok()))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}", self.authority())
    }
}

/// Parses an absolute `http`/`https` URL. No user info, no fragment, no spaces or control
/// characters; scheme and host are case-insensitive, default ports are normalised.
pub fn parse_url(url: &str) -> Result<Url, &'static str> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains('#') {
        return Err("has spaces, control characters or a fragment");
    }
    let (scheme, rest) = url.split_once("://").ok_or("is not an absolute URL")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        _ => return Err("is not an http or https URL"),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err("carries user info");
    }
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    let valid_host = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|v6| {
            !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':')
        })
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    if !valid_host {
        return Err("has no valid host");
    }
    let mut origin = Origin {
        scheme,
        host: host.to_ascii_lowercase(),
        port: if scheme == Scheme::Https { 443 } else { 80 },
    };
    if let Some(port) = port {
        origin.port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or("has an invalid port")?;
    }
    let path = match tail {
        "" => "/".to_owned(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_owned(),
    };
    Ok(Url { origin, path })
}

/// An `origins` key: an origin, with at most a `/` after it.
fn parse_origin(text: &str) -> Result<Origin, &'static str> {
    let url = parse_url(text)?;
    if url.path != "/" || text.ends_with('?') {
        return Err("must be an origin (scheme://host[:port]) without a path or query");
    }
    Ok(url.origin)
}

impl RawDiscovery {
    pub(super) fn validate(self, at: &str, issuer: &str) -> Result<Discovery, ConfigError> {
        let issuer_url = parse_url(issuer)
            .ok()
            .filter(|u| !u.path.contains('?'))
            .ok_or_else(|| {
                err(
                    format!("{at}.issuer"),
                    "with discovery, must be an http(s) URL without query or fragment",
                )
            })?;
        let at = format!("{at}.discovery");
        let path = self
            .path
            .unwrap_or_else(|| format!("{}{WELL_KNOWN}", issuer_url.path.trim_end_matches('/')));
        // Default `:authority`: the issuer's host[:port], not the cluster name as for other
        // callouts: an OP builds the URLs of its document from the Host it is asked with
        // (node oidc-provider does), and they must land on the issuer's origin.
        let source = RawJwksSource {
            cluster: self.cluster,
            path,
            authority: Some(
                self.authority
                    .unwrap_or_else(|| issuer_url.origin.authority()),
            ),
            refresh_seconds: self.refresh_seconds,
            min_early_refresh_seconds: self.min_early_refresh_seconds,
            timeout_ms: self.timeout_ms,
        }
        .validate(&at)?;
        let mut origins = Vec::new();
        for (text, cluster) in self.origins.unwrap_or_default() {
            let field = format!("{at}.origins.{text}");
            let origin = parse_origin(&text).map_err(|m| err(&field, m))?;
            if cluster.is_empty() || cluster.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(err(field, "the cluster name is empty or has spaces"));
            }
            if origins.iter().any(|(o, _)| *o == origin) {
                return Err(err(field, "names an origin already listed"));
            }
            origins.push((origin, cluster));
        }
        let issuer_origin = issuer_url.origin;
        if issuer_origin.scheme == Scheme::Http
            && !issuer_origin.is_loopback()
            && !origins.iter().any(|(o, _)| *o == issuer_origin)
        {
            return Err(err(
                format!("{at}.origins"),
                format!(
                    "the issuer is http on a non-loopback host: list {issuer_origin} here to allow it"
                ),
            ));
        }
        Ok(Discovery {
            source,
            issuer_origin,
            origins,
        })
    }
}

impl Provider {
    /// Where this provider's fetched keys come from and on which schedule: its `jwks` source,
    /// or its discovery document's (the keys are fetched right after the document).
    pub fn key_source(&self) -> Option<&JwksSource> {
        self.jwks
            .as_ref()
            .or(self.discovery.as_ref().map(|d| &d.source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FilterConfig;
    use serde_json::{Value, json};

    fn provider(issuer: &str, extra: Value) -> Result<FilterConfig, ConfigError> {
        let mut p = json!({"issuer": issuer, "audiences": ["api"], "algorithms": ["RS256"]});
        if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
            p.extend(extra.clone());
        }
        FilterConfig::from_json(json!({"providers": [p]}).to_string().as_bytes())
    }

    #[test]
    fn discovery_alone_is_enough_and_has_defaults() {
        let config = provider(
            "https://op.example/realms/a/",
            json!({"discovery": {"cluster": "op"}}),
        )
        .unwrap();
        let p = &config.providers[0];
        let d = p.discovery.as_ref().unwrap();
        assert_eq!(p.jwks, None);
        assert_eq!(d.source.path, "/realms/a/.well-known/openid-configuration");
        assert_eq!(
            d.source.authority, "op.example",
            "the issuer's, not the cluster's"
        );
        assert_eq!(
            (d.source.refresh_seconds, d.source.timeout_ms),
            (300, 5_000)
        );
        assert_eq!(d.issuer_origin.to_string(), "https://op.example");
        assert_eq!(p.key_source(), Some(&d.source));
        let root = provider(
            "https://op.example",
            json!({"discovery": {"cluster": "op"}}),
        )
        .unwrap();
        assert_eq!(
            root.providers[0].discovery.as_ref().unwrap().source.path,
            WELL_KNOWN
        );
    }

    #[test]
    fn every_field_is_read() {
        let config = provider(
            "https://op.example",
            json!({"discovery": {"cluster": "op", "path": "/d", "authority": "op.example:443",
                "timeout_ms": 2000, "refresh_seconds": 60, "min_early_refresh_seconds": 5,
                "origins": {"HTTPS://Login.Example.com:443/": "login", "http://10.0.0.1:8080": "plain"}}}),
        )
        .unwrap();
        let d = config.providers[0].discovery.clone().unwrap();
        assert_eq!(
            (d.source.path.as_str(), d.source.authority.as_str()),
            ("/d", "op.example:443")
        );
        assert_eq!(
            (
                d.source.timeout_ms,
                d.source.refresh_seconds,
                d.source.min_early_refresh_seconds
            ),
            (2_000, 60, 5)
        );
        let origins: Vec<_> = d
            .origins
            .iter()
            .map(|(o, c)| (o.to_string(), c.as_str()))
            .collect();
        assert_eq!(
            origins,
            [
                ("https://login.example.com".to_owned(), "login"),
                ("http://10.0.0.1:8080".to_owned(), "plain")
            ]
        );
    }

    #[test]
    fn bad_discovery_blocks_are_refused_with_the_field() {
        let cases = [
            (
                "https://op.example",
                json!({"discovery": {"cluster": "op"}, "jwks": {"cluster": "op", "path": "/j"}}),
                "providers[0].discovery",
            ),
            (
                "op.example",
                json!({"discovery": {"cluster": "op"}}),
                "providers[0].issuer",
            ),
            (
                "https://op.example?x=1",
                json!({"discovery": {"cluster": "op"}}),
                "providers[0].issuer",
            ),
            (
                "https://op.example",
                json!({"discovery": {"cluster": ""}}),
                "providers[0].discovery.cluster",
            ),
            (
                "https://op.example",
                json!({"discovery": {"cluster": "op", "path": "x"}}),
                "providers[0].discovery.path",
            ),
            (
                "https://op.example",
                json!({"discovery": {"cluster": "op", "refresh_seconds": 0}}),
                "providers[0].discovery.refresh_seconds",
            ),
            (
                "https://op.example",
                json!({"discovery": {"cluster": "op", "timeout_ms": 1}}),
                "providers[0].discovery.timeout_ms",
            ),
            (
                "https://op.example",
                json!({"discovery": {"cluster": "op", "origins": {"https://a/x": "c"}}}),
                "providers[0].discovery.origins.https://a/x",
            ),
            (
                "https://op.example",
                json!({"discovery": {"cluster": "op", "origins": {"ftp://a": "c"}}}),
                "providers[0].discovery.origins.ftp://a",
            ),
            (
                "https://op.example",
                json!({"discovery": {"cluster": "op", "origins": {"https://a": ""}}}),
                "providers[0].discovery.origins.https://a",
            ),
            (
                "https://op.example",
                json!({"discovery": {"cluster": "op", "origins": {"https://a": "c", "https://A:443": "d"}}}),
                "providers[0].discovery.origins.https://a",
            ),
            (
                "http://op.example",
                json!({"discovery": {"cluster": "op"}}),
                "providers[0].discovery.origins",
            ),
        ];
        for (issuer, extra, field) in cases {
            let error = provider(issuer, extra.clone()).unwrap_err();
            assert_eq!(error.field, field, "{issuer} {extra}: {}", error.message);
        }
        // Unknown members are refused by the parser.
        let error = provider(
            "https://op.example",
            json!({"discovery": {"cluster": "op", "url": "x"}}),
        )
        .unwrap_err();
        assert!(error.message.contains("unknown field"), "{}", error.message);
    }

    #[test]
    fn an_http_issuer_is_allowed_on_loopback_or_when_listed() {
        for (issuer, origins) in [
            ("http://127.0.0.1:9000", json!({})),
            ("http://localhost:9000", json!({})),
            ("http://[::1]:9000", json!({})),
            ("http://op.internal", json!({"http://op.internal:80": "op"})),
        ] {
            let config = provider(
                issuer,
                json!({"discovery": {"cluster": "op", "origins": origins}}),
            );
            assert!(config.is_ok(), "{issuer}: {config:?}");
        }
    }

    #[test]
    fn urls_are_split_and_normalised() {
        let url = parse_url("HTTPS://OP.Example:443/a/b?c=d").unwrap();
        assert_eq!(url.origin.to_string(), "https://op.example");
        assert_eq!(url.path, "/a/b?c=d");
        assert_eq!(parse_url("http://h:8080").unwrap().path, "/");
        assert_eq!(parse_url("http://h?x").unwrap().path, "/?x");
        assert_eq!(
            parse_url("http://h:8080").unwrap().origin.authority(),
            "h:8080"
        );
        assert_eq!(
            parse_url("http://[::1]:81/").unwrap().origin.authority(),
            "[::1]:81"
        );
        for bad in [
            "",
            "/path",
            "ftp://h/",
            "https://",
            "https://u@h/",
            "https://h:0/",
            "https://h:99999/",
            "https://h/#f",
            "https://h/a b",
            "https://h:x/",
            "https://[zz]/",
            "https://h_h/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
