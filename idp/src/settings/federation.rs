//! `[federation]`: the upstream issuers the IDP federates as a revocation hub (tokens it does not
//! issue, but whose logouts it publishes on its feed as cut-offs). Validated once at start.

use super::{Client, SettingsError, err};
use filter::jose::algorithm::Algorithm;
use serde::Deserialize;

pub mod ssf_stream;
pub use ssf_stream::{Delivery, EventAction, PollMode, RawSsfStream, SsfStream, StreamAuth};

/// Default period of the background refresh of upstream keys.
pub const DEFAULT_KEY_REFRESH_SECONDS: u64 = 300;
/// Default leeway on a logout token's times.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;
/// Default age beyond which a logout token's `iat` is refused.
pub const DEFAULT_LOGOUT_TOKEN_MAX_AGE_SECONDS: u64 = 300;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFederation {
    #[serde(default)]
    pub issuers: Vec<RawFederatedIssuer>,
    /// How often every issuer's keys are fetched again (default 300 s, 10..=86400).
    pub key_refresh_seconds: Option<u64>,
    /// Shared Signals transmitters whose SETs become cut-offs (see [`ssf_stream`]).
    #[serde(default)]
    pub ssf_streams: Vec<RawSsfStream>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFederatedIssuer {
    pub issuer: String,
    /// Where the issuer's JWKS is; or `discovery = true` to read it from its discovery document.
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub discovery: bool,
    /// The signature algorithms accepted from it (default RS256 and ES256; never `none`/HMAC).
    pub algorithms: Option<Vec<String>>,
    /// Client ids at that provider whose back-channel logout tokens are accepted (`aud`).
    #[serde(default)]
    pub backchannel_audiences: Vec<String>,
    /// Its longest access-token lifetime: a cut-off is kept this long after its time.
    pub max_token_lifetime_seconds: u64,
    /// Leeway on a logout token's `iat` and `exp` (default 30 s, at most 300).
    pub leeway_seconds: Option<u64>,
    /// A logout token issued longer ago than this is refused (default 300 s, 10..=3600).
    pub logout_token_max_age_seconds: Option<u64>,
}

/// Where an upstream issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysFrom {
    JwksUri(String),
    /// `{issuer}/.well-known/openid-configuration`, whose `issuer` must equal it exactly.
    Discovery,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedIssuer {
    pub issuer: String,
    pub keys: KeysFrom,
    pub algorithms: Vec<Algorithm>,
    pub backchannel_audiences: Vec<String>,
    pub max_token_lifetime_seconds: u64,
    pub leeway_seconds: u64,
    pub logout_token_max_age_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    pub issuers: Vec<FederatedIssuer>,
    pub key_refresh_seconds: u64,
    pub ssf_streams: Vec<SsfStream>,
}

impl Default for Federation {
    fn default() -> Self {
        Federation {
            issuers: Vec::new(),
            key_refresh_seconds: DEFAULT_KEY_REFRESH_SECONDS,
            ssf_streams: Vec::new(),
        }
    }
}

impl Federation {
    pub fn issuer(&self, iss: &str) -> Option<&FederatedIssuer> {
        self.issuers.iter().find(|i| i.issuer == iss)
    }
}

/// An http(s) URL without fragment (any host: the operator configured it).
fn check_url(field: &str, text: &str) -> Result<(), SettingsError> {
    let parsed = url::Url::parse(text).map_err(|_| err(field, format!("{text:?} is not a URL")))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.fragment().is_some()
    {
        return Err(err(
            field,
            "must be an http or https URL without a fragment",
        ));
    }
    Ok(())
}

impl RawFederation {
    /// `own_issuer`: the IDP's own issuer, which is never federated (its tokens are its own).
    pub fn validate(self, own_issuer: &str) -> Result<Federation, SettingsError> {
        let key_refresh_seconds = self
            .key_refresh_seconds
            .unwrap_or(DEFAULT_KEY_REFRESH_SECONDS);
        if !(10..=86_400).contains(&key_refresh_seconds) {
            return Err(err(
                "federation.key_refresh_seconds",
                "must be between 10 and 86400",
            ));
        }
        let mut issuers: Vec<FederatedIssuer> = Vec::with_capacity(self.issuers.len());
        for (i, raw) in self.issuers.into_iter().enumerate() {
            let issuer = raw.validate(&format!("federation.issuers[{i}]"), own_issuer)?;
            if issuers.iter().any(|o| o.issuer == issuer.issuer) {
                return Err(err(
                    format!("federation.issuers[{i}].issuer"),
                    format!("{:?} is defined twice", issuer.issuer),
                ));
            }
            issuers.push(issuer);
        }
        let federated: Vec<String> = issuers.iter().map(|i| i.issuer.clone()).collect();
        let mut ssf_streams: Vec<SsfStream> = Vec::with_capacity(self.ssf_streams.len());
        for (i, raw) in self.ssf_streams.into_iter().enumerate() {
            let stream = raw.validate(&format!("federation.ssf_streams[{i}]"), &federated)?;
            if ssf_streams.iter().any(|o| o.name == stream.name) {
                return Err(err(
                    format!("federation.ssf_streams[{i}].name"),
                    format!("{:?} is defined twice", stream.name),
                ));
            }
            ssf_streams.push(stream);
        }
        Ok(Federation {
            issuers,
            key_refresh_seconds,
            ssf_streams,
        })
    }
}

impl RawFederatedIssuer {
    fn validate(self, at: &str, own_issuer: &str) -> Result<FederatedIssuer, SettingsError> {
        let f = |name: &str| format!("{at}.{name}");
        check_url(&f("issuer"), &self.issuer)?;
        if self.issuer == own_issuer {
            return Err(err(f("issuer"), "is this IDP's own issuer"));
        }
        let keys = match (self.jwks_uri, self.discovery) {
            (Some(uri), false) => {
                check_url(&f("jwks_uri"), &uri)?;
                KeysFrom::JwksUri(uri)
            }
            (None, true) => KeysFrom::Discovery,
            (Some(_), true) => {
                return Err(err(
                    f("jwks_uri"),
                    "give jwks_uri or discovery = true, not both",
                ));
            }
            (None, false) => {
                return Err(err(f("jwks_uri"), "give jwks_uri or discovery = true"));
            }
        };
        let names = self
            .algorithms
            .unwrap_or_else(|| vec!["RS256".to_owned(), "ES256".to_owned()]);
        if names.is_empty() {
            return Err(err(f("algorithms"), "must name at least one algorithm"));
        }
        let mut algorithms = Vec::with_capacity(names.len());
        for (j, name) in names.iter().enumerate() {
            let alg = name.parse::<Algorithm>().map_err(|_| {
                err(
                    format!("{at}.algorithms[{j}]"),
                    format!("{name:?} is not one of ES256, RS256, PS256, EdDSA"),
                )
            })?;
            algorithms.push(alg);
        }
        for (j, aud) in self.backchannel_audiences.iter().enumerate() {
            if aud.is_empty() {
                return Err(err(
                    format!("{at}.backchannel_audiences[{j}]"),
                    "must be a client id",
                ));
            }
        }
        if !(1..=30 * 86_400).contains(&self.max_token_lifetime_seconds) {
            return Err(err(
                f("max_token_lifetime_seconds"),
                "must be between 1 and 2592000",
            ));
        }
        let leeway_seconds = self.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS);
        if leeway_seconds > 300 {
            return Err(err(f("leeway_seconds"), "must be at most 300"));
        }
        let logout_token_max_age_seconds = self
            .logout_token_max_age_seconds
            .unwrap_or(DEFAULT_LOGOUT_TOKEN_MAX_AGE_SECONDS);
        if !(10..=3600).contains(&logout_token_max_age_seconds) {
            return Err(err(
                f("logout_token_max_age_seconds"),
                "must be between 10 and 3600",
            ));
        }
        Ok(FederatedIssuer {
            issuer: self.issuer,
            keys,
            algorithms,
            backchannel_audiences: self.backchannel_audiences,
            max_token_lifetime_seconds: self.max_token_lifetime_seconds,
            leeway_seconds,
            logout_token_max_age_seconds,
        })
    }
}

/// A client's `federated_issuers` must be gateways' and name configured issuers.
pub fn check_clients(federation: &Federation, clients: &[Client]) -> Result<(), SettingsError> {
    for (i, c) in clients.iter().enumerate() {
        if !c.federated_issuers.is_empty() && !c.gateway {
            return Err(err(
                format!("clients[{i}].federated_issuers"),
                "only a gateway client (gateway = true) may report cut-offs",
            ));
        }
        for (j, iss) in c.federated_issuers.iter().enumerate() {
            if federation.issuer(iss).is_none() {
                return Err(err(
                    format!("clients[{i}].federated_issuers[{j}]"),
                    format!("{iss:?} is not in [[federation.issuers]]"),
                ));
            }
        }
    }
    Ok(())
}
