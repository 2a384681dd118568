//! Setting a stream up (SSF 1.0 §7, §8.1): read the transmitter's configuration document (its
//! `issuer` must equal the configured transmitter exactly) and keys, create the stream with our
//! delivery method and the events we act on (`409 Conflict`: one exists, read it), read its
//! status, and ask for a verification event whose `state` must come back.

use super::client::{Body, ClientError};
use super::{Count, StreamRuntime};
use crate::settings::{Delivery, EventAction};
use hyper::Method;
use serde_json::{Value, json};
use std::time::Duration;

pub const POLL_METHOD: &str = "urn:ietf:rfc:8936";
pub const PUSH_METHOD: &str = "urn:ietf:rfc:8935";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Http(#[from] ClientError),
    #[error("{0}")]
    Refused(String),
}

fn refused(why: impl Into<String>) -> SetupError {
    SetupError::Refused(why.into())
}

/// A stream ready for delivery.
#[derive(Debug, Clone)]
pub struct Connected {
    pub stream_id: String,
    /// Poll: the transmitter's endpoint (`delivery.endpoint_url`).
    pub poll_url: Option<String>,
}

fn url_member(doc: &Value, name: &str) -> Option<String> {
    doc.get(name)
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .map(str::to_owned)
}

/// Sets the stream up once (see the module doc).
pub async fn set_up(stream: &StreamRuntime, count: &Count) -> Result<Connected, SetupError> {
    let config = &stream.config;
    let http = &stream.http;
    let url = &config.configuration_url;
    let doc = http.json(Method::GET, url, None, Body::None).await?;
    match doc.get("issuer").and_then(Value::as_str) {
        Some(iss) if iss == config.transmitter => {}
        found => {
            return Err(refused(format!(
                "{url}: the configuration names issuer {:?}, not the configured transmitter",
                found.unwrap_or_default()
            )));
        }
    }
    let jwks_uri = url_member(&doc, "jwks_uri").ok_or_else(|| refused("no http(s) jwks_uri"))?;
    super::write(&stream.jwks_uri, Some(jwks_uri));
    if !stream.refresh_keys(Duration::ZERO).await && stream.keys().is_empty() {
        return Err(refused("the transmitter's JWKS has no usable key"));
    }
    let method = match config.delivery {
        Delivery::Poll { .. } => POLL_METHOD,
        Delivery::Push { .. } => PUSH_METHOD,
    };
    if let Some(list) = doc
        .get("delivery_methods_supported")
        .and_then(Value::as_array)
        && !list.iter().any(|m| m.as_str() == Some(method))
    {
        return Err(refused(format!("the transmitter does not offer {method}")));
    }
    let endpoint = url_member(&doc, "configuration_endpoint")
        .ok_or_else(|| refused("the transmitter has no configuration_endpoint"))?;
    let auth = stream.credentials.header(http).await?;
    let delivery = match &config.delivery {
        Delivery::Poll { .. } => json!({"method": POLL_METHOD}),
        Delivery::Push { url, authorization } => json!({
            "method": PUSH_METHOD, "endpoint_url": url, "authorization_header": authorization.0
        }),
    };
    let events: Vec<&str> = config
        .actions
        .iter()
        .filter(|(_, a)| **a == EventAction::Cutoff)
        .map(|(uri, _)| *uri)
        .collect();
    let request = json!({
        "delivery": delivery,
        "events_requested": events,
        "description": format!("oauth2 gateway hub ({})", config.name),
    });
    let created = http
        .send(
            Method::POST,
            &endpoint,
            Some(&auth),
            Body::Json(&request),
            http.timeout,
        )
        .await?;
    let stream_config = match created.status {
        200 | 201 => created.json(&endpoint)?,
        409 => {
            tracing::info!(stream = %config.name, "the transmitter already has our stream (409): reading it");
            let found = http
                .json(Method::GET, &endpoint, Some(&auth), Body::None)
                .await?;
            let existing = match found {
                Value::Array(list) => list
                    .iter()
                    .find(|s| s.pointer("/delivery/method").and_then(Value::as_str) == Some(method))
                    .or_else(|| list.first())
                    .cloned()
                    .ok_or_else(|| refused("409, and no stream listed"))?,
                other => other,
            };
            if let Delivery::Push { .. } = config.delivery
                && let Some(id) = existing.get("stream_id").and_then(Value::as_str)
            {
                // our endpoint and credentials may have changed since it was created
                let update = json!({"stream_id": id, "delivery": delivery});
                if let Err(e) = http
                    .json(Method::PATCH, &endpoint, Some(&auth), Body::Json(&update))
                    .await
                {
                    tracing::warn!(stream = %config.name, error = %e, "updating the existing stream's delivery failed");
                }
            }
            existing
        }
        401 => {
            stream.credentials.forget().await;
            return Err(ClientError::Status {
                url: endpoint,
                status: 401,
            }
            .into());
        }
        status => {
            return Err(ClientError::Status {
                url: endpoint,
                status,
            }
            .into());
        }
    };
    let stream_id = stream_config
        .get("stream_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| refused("the stream has no stream_id"))?
        .to_owned();
    let found_method = stream_config
        .pointer("/delivery/method")
        .and_then(Value::as_str);
    if found_method.is_some_and(|m| m != method) {
        return Err(refused(format!(
            "the transmitter's stream delivers by {}, not {method}",
            found_method.unwrap_or_default()
        )));
    }
    let aud_ok = match stream_config.get("aud") {
        None => true,
        Some(Value::String(a)) => *a == config.audience,
        Some(Value::Array(l)) => l.iter().any(|a| a.as_str() == Some(&config.audience)),
        Some(_) => false,
    };
    if !aud_ok {
        tracing::warn!(stream = %config.name, "the stream's aud does not name the configured audience: its SETs will be refused");
    }
    let poll_url = match config.delivery {
        Delivery::Poll { .. } => Some(
            url_member(
                stream_config.get("delivery").unwrap_or(&Value::Null),
                "endpoint_url",
            )
            .ok_or_else(|| refused("the poll stream has no delivery.endpoint_url"))?,
        ),
        Delivery::Push { .. } => None,
    };
    if let Some(status_endpoint) = url_member(&doc, "status_endpoint") {
        let url = with_stream_id(&status_endpoint, &stream_id);
        let status = http
            .json(Method::GET, &url, Some(&auth), Body::None)
            .await?;
        let s = status
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        stream.status_changed(s, status.get("reason").and_then(Value::as_str), count);
    } else {
        stream.status_changed(
            "enabled",
            Some("the transmitter has no status endpoint"),
            count,
        );
    }
    // (once: a set-up repeated while a paused stream is looked at again asks no more)
    if config.verify
        && !stream.awaiting_verification()
        && !stream.verified_once()
        && let Some(verification) = url_member(&doc, "verification_endpoint")
    {
        let state = hex::encode(rand::random::<[u8; 16]>());
        stream.expect_verification(state.clone());
        let body = json!({"stream_id": stream_id, "state": state});
        if let Err(e) = http
            .json(Method::POST, &verification, Some(&auth), Body::Json(&body))
            .await
        {
            count("ssf_stream", "verification_failed");
            tracing::warn!(stream = %config.name, error = %e, "asking for a verification event failed");
        }
    }
    count("ssf_stream", "set_up");
    tracing::info!(stream = %config.name, %stream_id, method, "SSF stream set up");
    Ok(Connected {
        stream_id,
        poll_url,
    })
}

fn with_stream_id(url: &str, stream_id: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    let id: String = url::form_urlencoded::byte_serialize(stream_id.as_bytes()).collect();
    format!("{url}{sep}stream_id={id}")
}

/// The pause before set-up attempt `n` (0-based) after failures: 1 s doubling to 60 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(6)).min(Duration::from_secs(60))
}

/// [`set_up`] retried with backoff until it works (push: nothing more to do afterwards).
pub async fn set_up_until_done(stream: &StreamRuntime, count: &Count) -> Connected {
    let mut failures = 0;
    loop {
        match set_up(stream, count).await {
            Ok(c) => return c,
            Err(e) => {
                count("ssf_stream", "setup_failed");
                tracing::warn!(stream = %stream.config.name, error = %e, "SSF stream set-up failed; trying again");
                tokio::time::sleep(backoff(failures)).await;
                failures += 1;
            }
        }
    }
}
