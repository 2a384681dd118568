//! OpenID Connect Discovery for a provider (`providers[i].discovery`): the document read strictly,
//! its `issuer` compared with the configured one exactly, and each URL it names mapped to a
//! configured cluster (see [`crate::config::discovery`] for the origin rule) — never to an
//! arbitrary host. Pure functions; the glues fetch the document once per Envoy, then the keys from
//! the resolved `jwks_uri`, and publish the [`DiscoveredEndpoints`] to their workers.
//!
//! A document is accepted whole or not at all: any member that is malformed or names a URL no
//! cluster serves makes it invalid, and the last good document stays in force.

use crate::config::Provider;
use crate::config::discovery::{Discovery, Scheme, parse_url};
use crate::config::services::Callout;
use crate::shared_state::jwks_share::JwksShare;
use crate::shared_state::refresh::JobKeys;
use crate::shared_state::{SetError, SharedData, Update, read_versioned, update_versioned};
use serde_json::Value;

/// The largest discovery document read.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// The endpoints of a provider found in its discovery document, each reached through a
/// configured cluster. Workers read the current value (Wasm: `Worker::discovered(i)`, native:
/// `Gateway::discovered(i)`); all `None` until a document was accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveredEndpoints {
    pub revocation: Option<Callout>,
    pub introspection: Option<Callout>,
    pub end_session: Option<Callout>,
}

/// An accepted document, resolved: where the keys are and the other endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub jwks: Callout,
    pub endpoints: DiscoveredEndpoints,
}

/// The members of a discovery document the gateway uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub introspection_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("the discovery document is malformed: {0}")]
    Malformed(String),
    #[error("the discovery document's issuer {found:?} is not the configured issuer {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the discovery document has no jwks_uri")]
    NoJwksUri,
    #[error("the discovery document's {member} {url:?} is refused: {why}")]
    Refused {
        member: &'static str,
        url: String,
        why: String,
    },
}

/// Reads a document strictly: a JSON object (no duplicate members) of at most
/// [`MAX_DOCUMENT_BYTES`], `issuer` a string, the URL members strings when present. Other members
/// are ignored.
pub fn parse_document(body: &[u8]) -> Result<Document, DiscoveryError> {
    let bad = |m: &str| DiscoveryError::Malformed(m.to_owned());
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(bad("larger than 64 KiB"));
    }
    let object = serde_json::from_slice::<crate::jose::strict_json::StrictObject>(body)
        .map_err(|e| DiscoveryError::Malformed(e.to_string()))?
        .0;
    let text = |name: &str| -> Result<Option<String>, DiscoveryError> {
        match object.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(DiscoveryError::Malformed(format!("{name} is not a string"))),
        }
    };
    Ok(Document {
        issuer: text("issuer")?.ok_or_else(|| bad("no issuer"))?,
        jwks_uri: text("jwks_uri")?,
        revocation_endpoint: text("revocation_endpoint")?,
        introspection_endpoint: text("introspection_endpoint")?,
        end_session_endpoint: text("end_session_endpoint")?,
    })
}

/// The callout that reaches `url`, if a configured cluster serves its origin: an `origins` entry,
/// else the issuer's origin (the discovery cluster). `http` only on loopback or when listed.
pub fn route(discovery: &Discovery, url: &str) -> Result<Callout, String> {
    let parsed = parse_url(url).map_err(|m| format!("the URL {m}"))?;
    let listed = discovery.origins.iter().find(|(o, _)| *o == parsed.origin);
    let cluster = match listed {
        Some((_, cluster)) => cluster,
        None if parsed.origin == discovery.issuer_origin => &discovery.source.cluster,
        None => {
            return Err(format!(
                "its origin {} is neither the issuer's nor listed in discovery.origins",
                parsed.origin
            ));
        }
    };
    if parsed.origin.scheme == Scheme::Http && listed.is_none() && !parsed.origin.is_loopback() {
        return Err(format!(
            "http on a non-loopback host; list {} in discovery.origins to allow it",
            parsed.origin
        ));
    }
    Ok(Callout {
        cluster: cluster.clone(),
        authority: parsed.origin.authority(),
        path: parsed.path,
        timeout_ms: discovery.source.timeout_ms,
    })
}

/// Checks a fetched document against the provider's configuration and resolves its URLs.
pub fn resolve(provider: &Provider, body: &[u8]) -> Result<Resolved, DiscoveryError> {
    let Some(discovery) = &provider.discovery else {
        return Err(DiscoveryError::Malformed(
            "the provider has no discovery".into(),
        ));
    };
    let document = parse_document(body)?;
    if document.issuer != provider.issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: provider.issuer.clone(),
            found: document.issuer,
        });
    }
    let callout = |member: &'static str, url: Option<String>| match url {
        None => Ok(None),
        Some(url) => route(discovery, &url)
            .map(Some)
            .map_err(|why| DiscoveryError::Refused { member, url, why }),
    };
    let jwks = callout("jwks_uri", document.jwks_uri)?.ok_or(DiscoveryError::NoJwksUri)?;
    Ok(Resolved {
        jwks,
        endpoints: DiscoveredEndpoints {
            revocation: callout("revocation_endpoint", document.revocation_endpoint)?,
            introspection: callout("introspection_endpoint", document.introspection_endpoint)?,
            end_session: callout("end_session_endpoint", document.end_session_endpoint)?,
        },
    })
}

/// A discovery provider's entries in shared data (Wasm): the last accepted document (versioned;
/// workers resolve it again when the version moves), the keys fetched from its `jwks_uri`, and
/// one schedule and lease for both fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryShare {
    pub document: String,
    pub jwks: JwksShare,
}

impl DiscoveryShare {
    pub fn new(discovery: &Discovery) -> Self {
        let at = format!("{}{}", discovery.source.cluster, discovery.source.path);
        DiscoveryShare {
            document: format!("oauth2gw/discovery/{at}"),
            jwks: JwksShare {
                keys: format!("oauth2gw/discovery-jwks/{at}"),
                job: JobKeys {
                    schedule: format!("oauth2gw/discovery-schedule/{at}"),
                    lease: format!("oauth2gw/lease/discovery/{at}"),
                },
            },
        }
    }

    /// Stores an accepted document; written only when it differs from the stored one.
    pub fn store(&self, shared: &dyn SharedData, document: &[u8]) -> Result<Update, SetError> {
        update_versioned(shared, &self.document, |current| {
            (current != document).then(|| document.to_vec())
        })
    }

    /// The last accepted document and its version (0: none yet).
    pub fn read(&self, shared: &dyn SharedData) -> (u64, Vec<u8>) {
        read_versioned(shared, &self.document)
    }
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
