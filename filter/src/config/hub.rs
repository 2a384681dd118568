//! The revocation hub (our IDP in its federation role): where this gateway reports what it
//! revoked for providers whose tokens other gateways must refuse too. After a logout through this
//! gateway it reports the cut-off (`POST cutoffs_path`); a back-channel logout token it receives
//! is forwarded as it came (`POST backchannel_logout_path`), and the hub validates it again. The
//! hub then publishes both on the revocation feed every gateway polls. The gateway authenticates
//! as `idp_client`.

use super::error::{ConfigError, err};
use super::provider::Provider;
use super::services::{Callout, RawCallout};
use serde::Deserialize;

pub const DEFAULT_CUTOFFS_PATH: &str = "/oauth2/cutoffs";
pub const DEFAULT_HUB_BACKCHANNEL_PATH: &str = "/oauth2/backchannel-logout";

/// The revocation hub (the IDP in its federation role) this gateway reports revocations to,
/// as `idp_client`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawHub {
    /// The Envoy cluster of the hub.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub cluster: String,
    /// The `:authority` of the request (host[:port], no spaces); default: the cluster name.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::NO_SPACES)))]
    pub authority: Option<String>,
    /// Timeout of the call (milliseconds).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 10, max = 60_000), extend("default" = super::services::DEFAULT_CALL_TIMEOUT_MS)))]
    pub timeout_ms: Option<u64>,
    /// Where cut-offs are reported (starts with `/`, no spaces).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH), extend("default" = DEFAULT_CUTOFFS_PATH)))]
    pub cutoffs_path: Option<String>,
    /// Where received back-channel logout tokens are forwarded (starts with `/`, no spaces).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH), extend("default" = DEFAULT_HUB_BACKCHANNEL_PATH)))]
    pub backchannel_logout_path: Option<String>,
    /// The issuers (of configured providers) whose revocations go through the hub (at least
    /// one; each the `issuer` of a provider, checked by the filter).
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub issuers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hub {
    pub cutoffs: Callout,
    pub backchannel_logout: Callout,
    /// Whether provider `i`'s revocations go through the hub.
    pub federated: Vec<bool>,
}

impl Hub {
    /// Whether the revocations of provider `index` are reported to the hub.
    pub fn federates(&self, index: usize) -> bool {
        self.federated.get(index).copied().unwrap_or(false)
    }
}

impl RawHub {
    pub fn validate(self, at: &str, providers: &[Provider]) -> Result<Hub, ConfigError> {
        let callout = |path: Option<String>, default: &str| RawCallout {
            cluster: self.cluster.clone(),
            path: path.unwrap_or_else(|| default.to_owned()),
            authority: self.authority.clone(),
            timeout_ms: self.timeout_ms,
        };
        let cutoffs = callout(self.cutoffs_path.clone(), DEFAULT_CUTOFFS_PATH).validate(at)?;
        let backchannel_logout = callout(
            self.backchannel_logout_path.clone(),
            DEFAULT_HUB_BACKCHANNEL_PATH,
        )
        .validate(at)?;
        if self.issuers.is_empty() {
            return Err(err(
                format!("{at}.issuers"),
                "name at least one provider's issuer",
            ));
        }
        let mut federated = vec![false; providers.len()];
        for (j, issuer) in self.issuers.iter().enumerate() {
            let index = providers
                .iter()
                .position(|p| &p.issuer == issuer)
                .ok_or_else(|| {
                    err(
                        format!("{at}.issuers[{j}]"),
                        format!("no provider has the issuer {issuer:?}"),
                    )
                })?;
            federated[index] = true;
        }
        Ok(Hub {
            cutoffs,
            backchannel_logout,
            federated,
        })
    }
}
