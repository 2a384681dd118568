//! One delivery attempt over HTTP (hyper's client; plain http on the wire, as the federation
//! fetcher: an https receiver is reached through a TLS-originating proxy):
//! - a SET to a push stream's `endpoint_url` (RFC 8935 §2): `Content-Type:
//!   application/secevent+jwt`, the stream's `Authorization` header; 202 (or any 2xx) is
//!   delivered, 400 with an RFC 8935 error is a refusal (the same SET would fail again);
//! - a logout token to the client's `backchannel_logout_uri` (BCL 1.0 §2.5): a form with
//!   `logout_token`; 200 or 204 is delivered; anything else is retried (§2.8: the RP may have
//!   been down).

use crate::backchannel_sender::form_body;
use crate::settings::Settings;
use crate::ssf::stream::StreamConfig;
use crate::store::events::{DueDelivery, Target};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// The largest answer body read (an RFC 8935 error object).
const MAX_ANSWER_BYTES: usize = 16 * 1024;

pub enum Outcome {
    Delivered,
    /// The receiver refused the token itself: dropped, not retried.
    Refused(String),
    /// Retried while attempts remain.
    Failed(String),
}

#[derive(Clone)]
pub struct Pusher {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Pusher {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Pusher {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }
}

struct Post {
    url: String,
    content_type: &'static str,
    authorization: Option<String>,
    body: String,
    push: bool,
}

impl Pusher {
    /// Sends `row` once, within `timeout`.
    pub async fn attempt(
        &self,
        settings: &Settings,
        row: &DueDelivery,
        timeout: Duration,
    ) -> Outcome {
        let post = match prepare(settings, row) {
            Ok(p) => p,
            Err(why) => return Outcome::Refused(why),
        };
        match tokio::time::timeout(timeout, self.send(&post)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Failed("timed out".into()),
        }
    }

    async fn send(&self, post: &Post) -> Outcome {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&post.url)
            .header(header::CONTENT_TYPE, post.content_type)
            .header(header::ACCEPT, "application/json");
        if let Some(a) = &post.authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = match req.body(Full::new(Bytes::from(post.body.clone()))) {
            Ok(r) => r,
            Err(e) => return Outcome::Refused(format!("building the request: {e}")),
        };
        let res = match self.client.request(req).await {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("{}: {e}", post.url)),
        };
        let status = res.status();
        let body = Limited::new(res.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Outcome::Delivered;
        }
        if post.push && status == StatusCode::BAD_REQUEST {
            // RFC 8935 §2.3: {"err": ..., "description": ...}; the SET itself was refused.
            let err = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("err").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "unspecified".into());
            return Outcome::Refused(format!("{}: 400 {err}", post.url));
        }
        Outcome::Failed(format!("{}: answered HTTP {status}", post.url))
    }
}

fn prepare(settings: &Settings, row: &DueDelivery) -> Result<Post, String> {
    match &row.target {
        Target::Stream(_) => {
            let config: StreamConfig = row
                .stream_config
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .ok_or("the stream's configuration is unreadable")?;
            let url = config
                .endpoint_url
                .ok_or("the push stream has no endpoint_url")?;
            Ok(Post {
                url,
                content_type: "application/secevent+jwt",
                authorization: config.authorization_header,
                body: row.token.clone(),
                push: true,
            })
        }
        Target::Client(id) => {
            let url = settings
                .client(id)
                .and_then(|c| c.backchannel_logout_uri.clone())
                .ok_or("the client no longer has a backchannel_logout_uri")?;
            Ok(Post {
                url,
                content_type: "application/x-www-form-urlencoded",
                authorization: None,
                body: form_body(&row.token),
                push: false,
            })
        }
    }
}
