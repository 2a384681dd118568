//! A stream's configuration (SSF 1.0 §8.1.1): what the receiver supplies (`delivery`,
//! `events_requested`, `description`) checked once into [`StreamConfig`], and the full object
//! the API answers with (the transmitter-supplied `stream_id`, `iss`, `aud`,
//! `events_supported`, `events_delivered`, `min_verification_interval`).
//!
//! One stream per receiver (the OAuth client of the bearer token): a second create is a 409.
//! The `authorization_header` a push receiver gives is stored and sent with every push, never
//! shown again.

use super::set::EVENTS_SUPPORTED;
use super::{POLL_METHOD, PUSH_METHOD};
use crate::settings::check_push_url;
use crate::store::events::StreamRecord;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where the SSF poll endpoint is (its URL is each poll stream's `endpoint_url`).
pub const POLL_PATH: &str = "/ssf/poll";

/// The stored, checked configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamConfig {
    pub method: String,
    /// Push: the receiver's endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Push: the `Authorization` header value to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_header: Option<String>,
    #[serde(default)]
    pub events_requested: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A receiver's request body (create, replace, update): transmitter-supplied members are
/// ignored, unknown ones too (SSF 1.0 §8.1.1.1 lets receivers echo what they read).
#[derive(Debug, Default, Deserialize)]
pub struct StreamRequest {
    pub stream_id: Option<String>,
    pub delivery: Option<DeliveryRequest>,
    pub events_requested: Option<Vec<String>>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DeliveryRequest {
    pub method: String,
    pub endpoint_url: Option<String>,
    pub authorization_header: Option<String>,
}

/// A request the API refuses (400 with this text).
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

const MAX_EVENT_TYPES: usize = 32;
const MAX_TEXT: usize = 2048;

impl StreamConfig {
    /// A new configuration from a create or replace request (`delivery` required).
    pub fn from_request(req: &StreamRequest) -> Result<StreamConfig, Invalid> {
        let delivery = req
            .delivery
            .as_ref()
            .ok_or_else(|| Invalid("delivery is required".into()))?;
        let mut config = StreamConfig {
            method: String::new(),
            endpoint_url: None,
            authorization_header: None,
            events_requested: Vec::new(),
            description: None,
        };
        config.set_delivery(delivery)?;
        config.apply(req)?;
        Ok(config)
    }

    /// This configuration with the members an update request (PATCH) carries.
    pub fn updated(&self, req: &StreamRequest) -> Result<StreamConfig, Invalid> {
        let mut config = self.clone();
        if let Some(d) = &req.delivery {
            config.set_delivery(d)?;
        }
        config.apply(req)?;
        Ok(config)
    }

    fn set_delivery(&mut self, d: &DeliveryRequest) -> Result<(), Invalid> {
        match d.method.as_str() {
            PUSH_METHOD => {
                let url = d
                    .endpoint_url
                    .as_deref()
                    .ok_or_else(|| Invalid("push delivery needs delivery.endpoint_url".into()))?;
                check_push_url(url).map_err(|m| Invalid(format!("delivery.endpoint_url: {m}")))?;
                if let Some(h) = &d.authorization_header
                    && (h.len() > MAX_TEXT || axum::http::HeaderValue::from_str(h).is_err())
                {
                    return Err(Invalid(
                        "delivery.authorization_header is not a header value".into(),
                    ));
                }
                self.endpoint_url = Some(url.to_owned());
                self.authorization_header = d.authorization_header.clone();
            }
            POLL_METHOD => {
                // The transmitter supplies a poll stream's endpoint (SSF 1.0 §8.1.1).
                self.endpoint_url = None;
                self.authorization_header = None;
            }
            _ => {
                return Err(Invalid(format!(
                    "delivery.method must be {PUSH_METHOD} or {POLL_METHOD}"
                )));
            }
        }
        self.method = d.method.clone();
        Ok(())
    }

    fn apply(&mut self, req: &StreamRequest) -> Result<(), Invalid> {
        if let Some(events) = &req.events_requested {
            if events.len() > MAX_EVENT_TYPES || events.iter().any(|e| e.len() > MAX_TEXT) {
                return Err(Invalid("events_requested is too long".into()));
            }
            self.events_requested = events.clone();
        }
        if let Some(d) = &req.description {
            if d.len() > MAX_TEXT {
                return Err(Invalid("description is too long".into()));
            }
            self.description = Some(d.clone());
        }
        Ok(())
    }

    /// The supported event types the receiver asked for.
    pub fn events_delivered(&self) -> Vec<&'static str> {
        EVENTS_SUPPORTED
            .into_iter()
            .filter(|e| self.events_requested.iter().any(|r| r == e))
            .collect()
    }

    /// Whether this stream takes events of type `event`.
    pub fn delivers(&self, event: &str) -> bool {
        self.events_delivered().contains(&event)
    }
}

/// The stored configuration of a stream record (`None` if unreadable: never expected).
pub fn config_of(record: &StreamRecord) -> Option<StreamConfig> {
    serde_json::from_str(&record.config).ok()
}

/// The audience of a stream's SETs: its receiver's client id.
pub fn audience(record: &StreamRecord) -> &str {
    &record.client_id
}

/// The stream as the API shows it (SSF 1.0 §8.1.1), without the authorization header.
pub fn to_json(issuer: &str, record: &StreamRecord, config: &StreamConfig) -> Value {
    let endpoint_url = match config.method.as_str() {
        POLL_METHOD => Some(format!("{issuer}{POLL_PATH}")),
        _ => config.endpoint_url.clone(),
    };
    let mut delivery = json!({"method": config.method});
    if let Some(u) = endpoint_url {
        delivery["endpoint_url"] = json!(u);
    }
    let mut v = json!({
        "stream_id": record.stream_id,
        "iss": issuer,
        "aud": audience(record),
        "delivery": delivery,
        "events_supported": EVENTS_SUPPORTED,
        "events_requested": config.events_requested,
        "events_delivered": config.events_delivered(),
        "min_verification_interval": 0,
    });
    if let Some(d) = &config.description {
        v["description"] = json!(d);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssf::set::{SESSION_REVOKED, TOKEN_REVOKED};

    fn req(v: Value) -> StreamRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn push_needs_an_http_endpoint_and_poll_ignores_one() {
        let bad = req(json!({"delivery": {"method": PUSH_METHOD}}));
        assert!(StreamConfig::from_request(&bad).is_err());
        let tls = req(json!({"delivery": {"method": PUSH_METHOD, "endpoint_url": "https://r/x"}}));
        assert!(StreamConfig::from_request(&tls).is_err());
        let poll = req(
            json!({"delivery": {"method": POLL_METHOD, "endpoint_url": "http://x"},
            "events_requested": [SESSION_REVOKED, "urn:unknown"]}),
        );
        let c = StreamConfig::from_request(&poll).unwrap();
        assert_eq!(c.endpoint_url, None);
        assert_eq!(c.events_delivered(), [SESSION_REVOKED]);
        let patched = c
            .updated(&req(json!({"events_requested": [TOKEN_REVOKED]})))
            .unwrap();
        assert_eq!(patched.events_delivered(), [TOKEN_REVOKED]);
        assert_eq!(patched.method, POLL_METHOD);
        let odd = req(json!({"delivery": {"method": "urn:other"}}));
        assert!(StreamConfig::from_request(&odd).is_err());
    }
}
