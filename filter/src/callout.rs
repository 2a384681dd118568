//! A request the core asks its host glue to dispatch (a callout through an Envoy cluster).

use crate::config::services::Callout;

/// A request for the glue to dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutRequest {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

impl CalloutRequest {
    /// A `POST` of `body` (of `content_type`) to `endpoint`, with `extra` headers (credentials).
    pub fn post(
        endpoint: &Callout,
        content_type: &str,
        extra: Option<(String, String)>,
        body: Vec<u8>,
    ) -> CalloutRequest {
        let mut headers = vec![
            (":method".to_owned(), "POST".to_owned()),
            (":path".to_owned(), endpoint.path.clone()),
            (":authority".to_owned(), endpoint.authority.clone()),
            ("content-type".to_owned(), content_type.to_owned()),
        ];
        headers.extend(extra);
        CalloutRequest {
            cluster: endpoint.cluster.clone(),
            headers,
            body,
            timeout_ms: endpoint.timeout_ms,
        }
    }

    /// The headers as the hosts take them.
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// `application/x-www-form-urlencoded`.
pub const FORM: &str = "application/x-www-form-urlencoded";
