//! Configuration of the services the filter calls besides the JWKS: the IDP's revocation feed and
//! revocation endpoint, and the resource server's session-revoke endpoint (the logout sequence).

use super::error::{ConfigError, err, validate_header_name, validate_path};
use super::provider::Provider;
use serde::Deserialize;
use std::fmt;

pub const DEFAULT_FEED_POLL_MS: u64 = 500;
/// How long a feed poll asks the IDP to hold it when there is nothing new (see `feed_poll`).
pub const DEFAULT_LONG_POLL_SECONDS: u64 = 20;
/// The longest hold a poll may ask for.
pub const MAX_LONG_POLL_SECONDS: u64 = 300;
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 3_000;
pub const DEFAULT_LOGOUT_PATH: &str = "/oauth2/logout";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCallout {
    pub cluster: String,
    pub path: String,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// An HTTP endpoint reached through an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub timeout_ms: u64,
}

impl RawCallout {
    pub fn validate(self, at: &str) -> Result<Callout, ConfigError> {
        let f = |name: &str| format!("{at}.{name}");
        if self.cluster.is_empty() {
            return Err(err(f("cluster"), "is empty"));
        }
        validate_path(&self.path).map_err(|m| err(f("path"), m))?;
        let timeout_ms = self.timeout_ms.unwrap_or(DEFAULT_CALL_TIMEOUT_MS);
        if !(10..=60_000).contains(&timeout_ms) {
            return Err(err(f("timeout_ms"), "must be between 10 and 60000"));
        }
        let authority = self.authority.unwrap_or_else(|| self.cluster.clone());
        if authority.is_empty()
            || authority
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(err(f("authority"), "must be a host[:port] without spaces"));
        }
        Ok(Callout {
            cluster: self.cluster,
            path: self.path,
            authority,
            timeout_ms,
        })
    }
}

/// A secret from the configuration; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

fn secret(value: String, field: String) -> Result<Secret, ConfigError> {
    if value.len() < 16 || value.chars().any(|c| c.is_control()) {
        return Err(err(field, "must be at least 16 printable characters"));
    }
    Ok(Secret(value))
}

/// How the gateway authenticates to the IDP (a confidential client, client_secret_basic).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawIdpClient {
    /// The gateway's client id at the IDP (non-empty, no `:`).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::CLIENT_ID)))]
    pub client_id: String,
    /// The client secret (client_secret_basic): at least 16 characters, no control characters
    /// (the filter counts bytes: 16 bytes at least).
    #[cfg_attr(feature = "schema", schemars(length(min = 16), regex(pattern = super::error::patterns::NO_CONTROLS)))]
    pub client_secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpClient {
    pub client_id: String,
    pub client_secret: Secret,
}

impl IdpClient {
    /// The `Authorization` header value for client_secret_basic (RFC 6749 §2.3.1: id and secret
    /// are form-encoded before base64).
    pub fn basic_authorization(&self) -> String {
        use base64::Engine;
        let pair = format!(
            "{}:{}",
            form_encode(&self.client_id),
            form_encode(&self.client_secret.0)
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl RawIdpClient {
    pub fn validate(self, at: &str) -> Result<IdpClient, ConfigError> {
        if self.client_id.is_empty() || self.client_id.contains(':') {
            return Err(err(
                format!("{at}.client_id"),
                "must be non-empty without ':'",
            ));
        }
        Ok(IdpClient {
            client_id: self.client_id,
            client_secret: secret(self.client_secret, format!("{at}.client_secret"))?,
        })
    }
}

// (Fields are repeated rather than `#[serde(flatten)]`ed: flatten defeats deny_unknown_fields.)
/// The IDP's revocation feed (revoked `jti`s, `sid`s and cut-offs), polled once per Envoy as
/// `idp_client`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawRevocationFeed {
    /// The Envoy cluster it is reached through.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub cluster: String,
    /// The request path (starts with `/`, no spaces).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH)))]
    pub path: String,
    /// The `:authority` of the request (host[:port], no spaces); default: the cluster name.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::NO_SPACES)))]
    pub authority: Option<String>,
    /// Timeout of the call (milliseconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 10, max = 60_000), extend("default" = DEFAULT_CALL_TIMEOUT_MS)))]
    pub timeout_ms: Option<u64>,
    /// Pause between two polls (milliseconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 100, max = 3_600_000), extend("default" = DEFAULT_FEED_POLL_MS)))]
    pub poll_ms: Option<u64>,
    /// Seconds the IDP may hold a poll when nothing is new; 0 turns the long poll off.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = MAX_LONG_POLL_SECONDS), extend("default" = DEFAULT_LONG_POLL_SECONDS)))]
    pub long_poll_seconds: Option<u64>,
    /// Refuse tokens (503) until the feed has been read up to date once.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("default" = true)))]
    pub require_initial_sync: Option<bool>,
}

/// The IDP's revocation feed, polled once per Envoy (long-polled: see `crate::shared_state::feed_poll`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationFeed {
    pub endpoint: Callout,
    pub poll_ms: u64,
    pub long_poll_seconds: u64,
    /// Tokens are refused (503, fail closed) until the feed has been read up to date once, so a
    /// fresh gateway never accepts a token revoked before it started (see `crate::shared_state::feed_sync`).
    /// `false` trades that for availability: tokens are judged at once with what is known.
    pub require_initial_sync: bool,
}

impl RawRevocationFeed {
    pub fn validate(self, at: &str) -> Result<RevocationFeed, ConfigError> {
        let poll_ms = self.poll_ms.unwrap_or(DEFAULT_FEED_POLL_MS);
        if !(100..=3_600_000).contains(&poll_ms) {
            return Err(err(
                format!("{at}.poll_ms"),
                "must be between 100 and 3600000",
            ));
        }
        let long_poll_seconds = self.long_poll_seconds.unwrap_or(DEFAULT_LONG_POLL_SECONDS);
        if long_poll_seconds > MAX_LONG_POLL_SECONDS {
            return Err(err(
                format!("{at}.long_poll_seconds"),
                format!("must be between 0 (off) and {MAX_LONG_POLL_SECONDS}"),
            ));
        }
        let endpoint = RawCallout {
            cluster: self.cluster,
            path: self.path,
            authority: self.authority,
            timeout_ms: self.timeout_ms,
        };
        Ok(RevocationFeed {
            endpoint: endpoint.validate(at)?,
            poll_ms,
            long_poll_seconds,
            require_initial_sync: self.require_initial_sync.unwrap_or(true),
        })
    }
}

/// The resource server's session-revoke endpoint, called by logout with the token's `sid`/`sub`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawResourceServerRevoke {
    /// The Envoy cluster it is reached through.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub cluster: String,
    /// The request path (starts with `/`, no spaces).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH)))]
    pub path: String,
    /// The `:authority` of the request (host[:port], no spaces); default: the cluster name.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::NO_SPACES)))]
    pub authority: Option<String>,
    /// Timeout of the call (milliseconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 10, max = 60_000), extend("default" = DEFAULT_CALL_TIMEOUT_MS)))]
    pub timeout_ms: Option<u64>,
    /// The header carrying `secret` (lowercase letters, digits, `-`, `_`; not `authorization`,
    /// `host`, `cookie`, `content-length` or `transfer-encoding`).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::HEADER_NAME), extend("not" = {"enum": ["authorization", "host", "cookie", "content-length", "transfer-encoding"]})))]
    pub secret_header: String,
    /// The shared secret the resource server expects: at least 16 characters, no control
    /// characters (the filter counts bytes: 16 bytes at least).
    #[cfg_attr(feature = "schema", schemars(length(min = 16), regex(pattern = super::error::patterns::NO_CONTROLS)))]
    pub secret: String,
}

/// A provider's RFC 7009 revocation endpoint and the gateway's client there (`providers[i].revoke`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("dependencies" = {"cluster": ["path"], "path": ["cluster"],
                                      "authority": ["cluster"], "timeout_ms": ["cluster"]}))
)]
pub struct RawProviderRevoke {
    /// The Envoy cluster it is reached through. With `path`; both may be left out when the
    /// provider has `discovery`: its document's `revocation_endpoint` is used then.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub cluster: Option<String>,
    /// The request path (starts with `/`, no spaces). With `cluster`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH)))]
    pub path: Option<String>,
    /// The `:authority` of the request (host[:port], no spaces); default: the cluster name.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::NO_SPACES)))]
    pub authority: Option<String>,
    /// Timeout of the call (milliseconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 10, max = 60_000), extend("default" = DEFAULT_CALL_TIMEOUT_MS)))]
    pub timeout_ms: Option<u64>,
    /// The gateway's client id there (non-empty, no `:`).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::CLIENT_ID)))]
    pub client_id: String,
    /// The client secret (client_secret_basic): at least 16 characters, no control characters
    /// (the filter counts bytes: 16 bytes at least).
    #[cfg_attr(feature = "schema", schemars(length(min = 16), regex(pattern = super::error::patterns::NO_CONTROLS)))]
    pub client_secret: String,
}

/// Where logout revokes the tokens of one provider, and as which client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// `None`: the provider's discovered `revocation_endpoint`.
    pub endpoint: Option<Callout>,
    pub client: IdpClient,
}

impl RawProviderRevoke {
    /// `discovered`: the provider has `discovery`, which may give the endpoint instead.
    pub fn validate(self, at: &str, discovered: bool) -> Result<Revocation, ConfigError> {
        let client = RawIdpClient {
            client_id: self.client_id,
            client_secret: self.client_secret,
        }
        .validate(at)?;
        let endpoint = optional_endpoint(
            RawOptionalCallout {
                cluster: self.cluster,
                path: self.path,
                authority: self.authority,
                timeout_ms: self.timeout_ms,
            },
            discovered,
            at,
        )?;
        Ok(Revocation { endpoint, client })
    }
}

/// The parts of an endpoint that a provider's discovery document may give instead.
pub struct RawOptionalCallout {
    pub cluster: Option<String>,
    pub path: Option<String>,
    pub authority: Option<String>,
    pub timeout_ms: Option<u64>,
}

/// An endpoint configured by `cluster` and `path` (both), or neither when the provider has
/// discovery (`discovered`): `None`, the discovered endpoint is used.
pub fn optional_endpoint(
    raw: RawOptionalCallout,
    discovered: bool,
    at: &str,
) -> Result<Option<Callout>, ConfigError> {
    let f = |name: &str| format!("{at}.{name}");
    match (raw.cluster, raw.path) {
        (Some(cluster), Some(path)) => RawCallout {
            cluster,
            path,
            authority: raw.authority,
            timeout_ms: raw.timeout_ms,
        }
        .validate(at)
        .map(Some),
        (None, None) if !discovered => Err(err(
            f("cluster"),
            "is required (with path), unless the provider has discovery",
        )),
        (None, None) if raw.authority.is_some() || raw.timeout_ms.is_some() => Err(err(
            f("cluster"),
            "authority and timeout_ms go with cluster and path (a discovered endpoint has its origin's)",
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(err(f("path"), "is required with cluster")),
        (None, Some(_)) => Err(err(f("cluster"), "is required with path")),
    }
}

/// The single revocation endpoint of the top-level `logout` block (kept for older configs),
/// called as `idp_client`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawLogoutRevoke {
    /// The Envoy cluster it is reached through.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub cluster: String,
    /// The request path (starts with `/`, no spaces).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH)))]
    pub path: String,
    /// The `:authority` of the request (host[:port], no spaces); default: the cluster name.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::NO_SPACES)))]
    pub authority: Option<String>,
    /// Timeout of the call (milliseconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 10, max = 60_000), extend("default" = DEFAULT_CALL_TIMEOUT_MS)))]
    pub timeout_ms: Option<u64>,
    /// The provider (by name) whose tokens it revokes; required with several providers (checked
    /// by the filter, as is that this provider has no `revoke` of its own).
    #[serde(default)]
    pub provider: Option<String>,
}

/// The logout endpoint the gateway answers itself: it revokes the token at its provider
/// (RFC 7009), then the session at the resource server, and answers 200 only when both did.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawLogout {
    /// The path clients `POST` to (starts with `/`, no spaces).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH), extend("default" = DEFAULT_LOGOUT_PATH)))]
    pub path: Option<String>,
    /// An IDP's RFC 7009 endpoint, used with `idp_client` for one provider; providers may
    /// instead have their own `revoke`.
    #[serde(default)]
    pub revoke: Option<RawLogoutRevoke>,
    /// The resource server's session-revoke endpoint.
    pub resource_server: RawResourceServerRevoke,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logout {
    pub path: String,
    pub resource_server: Callout,
    pub resource_server_secret_header: String,
    pub resource_server_secret: Secret,
}

/// Gives each provider the revocation endpoint logout uses for its tokens. A provider's own
/// `revoke` wins; the top-level `logout.revoke` (with `idp_client`) belongs to the provider it
/// names, or to the only provider. Ambiguous or useless combinations are refused.
pub fn resolve_revocations(
    providers: &mut [Provider],
    top: Option<RawLogoutRevoke>,
    idp_client: Option<&IdpClient>,
    logout: Option<&Logout>,
) -> Result<(), ConfigError> {
    if let Some(top) = top {
        let at = "logout.revoke";
        let client = idp_client.ok_or_else(|| err("idp_client", "is required by logout.revoke"))?;
        let index = match &top.provider {
            Some(name) => providers
                .iter()
                .position(|p| &p.name == name)
                .ok_or_else(|| {
                    err(
                        format!("{at}.provider"),
                        format!("no provider named {name:?}"),
                    )
                })?,
            None if providers.len() == 1 => 0,
            None => {
                return Err(err(
                    at,
                    "with several providers, name the provider whose tokens it revokes (provider), \
                     or give each provider its own revoke",
                ));
            }
        };
        let endpoint = RawCallout {
            cluster: top.cluster,
            path: top.path,
            authority: top.authority,
            timeout_ms: top.timeout_ms,
        }
        .validate(at)?;
        let Some(provider) = providers.get_mut(index) else {
            return Err(err(at, "no such provider"));
        };
        if provider.revocation.is_some() {
            return Err(err(
                at,
                format!(
                    "provider {:?} has its own revoke: give it once",
                    provider.name
                ),
            ));
        }
        provider.revocation = Some(Revocation {
            endpoint: Some(endpoint),
            client: client.clone(),
        });
    }
    let any = providers.iter().position(|p| p.revocation.is_some());
    match (logout, any) {
        (Some(_), None) => Err(err(
            "logout",
            "no provider has a revocation endpoint (logout.revoke or providers[i].revoke)",
        )),
        (None, Some(i)) => Err(err(
            format!("providers[{i}].revoke"),
            "is only used by logout, which is not configured",
        )),
        _ => Ok(()),
    }
}

impl RawLogout {
    /// The validated block and its top-level `revoke`, for [`resolve_revocations`].
    pub fn validate(self, at: &str) -> Result<(Logout, Option<RawLogoutRevoke>), ConfigError> {
        let path = self.path.unwrap_or_else(|| DEFAULT_LOGOUT_PATH.to_owned());
        validate_path(&path).map_err(|m| err(format!("{at}.path"), m))?;
        let rs = self.resource_server;
        let rs_at = format!("{at}.resource_server");
        validate_header_name(&rs.secret_header)
            .map_err(|m| err(format!("{rs_at}.secret_header"), m))?;
        let secret_header = rs.secret_header.clone();
        let rs_secret = secret(rs.secret, format!("{rs_at}.secret"))?;
        let logout = Logout {
            path,
            resource_server: RawCallout {
                cluster: rs.cluster,
                path: rs.path,
                authority: rs.authority,
                timeout_ms: rs.timeout_ms,
            }
            .validate(&rs_at)?,
            resource_server_secret_header: secret_header,
            resource_server_secret: rs_secret,
        };
        Ok((logout, self.revoke))
    }
}
