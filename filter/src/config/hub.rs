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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHub {
    pub cluster: String,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub cutoffs_path: Option<String>,
    #[serde(default)]
    pub backchannel_logout_path: Option<String>,
    /// The issuers (of configured providers) whose revocations go through the hub.
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
