//! Fetching an upstream issuer's keys over HTTP (hyper's client, http only on the wire: the URLs
//! are the operator's, typically a sidecar or loopback; https needs a TLS-terminating proxy):
//! the JWKS at `jwks_uri`, or first the discovery document, whose `issuer` must equal the
//! configured one exactly. Bounded in time and size.

use crate::settings::{FederatedIssuer, KeysFrom};
use axum::body::Bytes;
use filter::jose::jwk::{KeySet, ParsedKeySet};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// The longest a fetch (connection, head and body) may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWKS or discovery document read.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: {why}")]
    Failed { url: String, why: String },
    #[error("{url}: the discovery document names issuer {found:?}, not the configured one")]
    WrongIssuer { url: String, found: String },
}

fn failed(url: &str, why: impl std::fmt::Display) -> FetchError {
    FetchError::Failed {
        url: url.to_owned(),
        why: why.to_string(),
    }
}

#[derive(Clone)]
pub struct Fetcher {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Default for Fetcher {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(FETCH_TIMEOUT));
        Fetcher {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }
}

impl Fetcher {
    /// The body of a `200` answer to `GET url`.
    pub async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        let uri: hyper::Uri = url.parse().map_err(|e| failed(url, e))?;
        let request = async {
            let res = self.client.get(uri).await.map_err(|e| failed(url, e))?;
            if res.status() != hyper::StatusCode::OK {
                return Err(failed(url, format!("answered HTTP {}", res.status())));
            }
            Limited::new(res.into_body(), MAX_DOCUMENT_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| failed(url, e))
        };
        tokio::time::timeout(FETCH_TIMEOUT, request)
            .await
            .map_err(|_| failed(url, "timed out"))?
    }

    /// The issuer's current keys.
    pub async fn keys(&self, issuer: &FederatedIssuer) -> Result<ParsedKeySet, FetchError> {
        let jwks_uri = match &issuer.keys {
            KeysFrom::JwksUri(uri) => uri.clone(),
            KeysFrom::Discovery => self.discover(&issuer.issuer).await?,
        };
        let body = self.get(&jwks_uri).await?;
        KeySet::parse(&body).map_err(|e| failed(&jwks_uri, e))
    }

    /// The `jwks_uri` of the issuer's discovery document (OIDC Discovery §4.3: its `issuer` is
    /// exactly the one configured).
    async fn discover(&self, issuer: &str) -> Result<String, FetchError> {
        let url = format!("{issuer}/.well-known/openid-configuration");
        let body = self.get(&url).await?;
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| failed(&url, e))?;
        match doc.get("issuer").and_then(serde_json::Value::as_str) {
            Some(found) if found == issuer => {}
            found => {
                return Err(FetchError::WrongIssuer {
                    url,
                    found: found.unwrap_or_default().to_owned(),
                });
            }
        }
        doc.get("jwks_uri")
            .and_then(serde_json::Value::as_str)
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .map(str::to_owned)
            .ok_or_else(|| failed(&url, "no http(s) jwks_uri"))
    }
}
