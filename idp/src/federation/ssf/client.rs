//! The hub's HTTP client towards a transmitter (hyper's client, http on the wire like the key
//! fetches of [`crate::federation::fetch`]): GET and POST with a bearer token, bounded in time
//! and size; and the OAuth client_credentials grant (RFC 6749 §4.4, client_secret_basic) for
//! the stream's token, kept until shortly before it expires.

use crate::settings::StreamAuth;
use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The largest answer read (a poll answer holds up to `max_events` SETs).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// The longest an ordinary request (not a long poll) may take, unless the stream says otherwise
/// (`request_timeout_seconds`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: {why}")]
    Failed { url: String, why: String },
    #[error("{url}: answered HTTP {status}")]
    Status { url: String, status: u16 },
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            ClientError::Failed { .. } => None,
        }
    }
}

fn failed(url: &str, why: impl std::fmt::Display) -> ClientError {
    ClientError::Failed {
        url: url.to_owned(),
        why: why.to_string(),
    }
}

/// An answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self, url: &str) -> Result<Value, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| failed(url, format!("not JSON: {e}")))
    }
}

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    /// The longest an ordinary request (not a long poll) may take.
    pub timeout: Duration,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::with_timeout(REQUEST_TIMEOUT)
    }
}

pub enum Body<'a> {
    None,
    Json(&'a Value),
    Form(String),
}

impl HttpClient {
    pub fn with_timeout(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }

    /// Sends a request and reads the whole answer (any status), within `timeout`.
    pub async fn send(
        &self,
        method: hyper::Method,
        url: &str,
        authorization: Option<&str>,
        body: Body<'_>,
        timeout: Duration,
    ) -> Result<Answer, ClientError> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header(header::ACCEPT, "application/json");
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let bytes = match body {
            Body::None => Bytes::new(),
            Body::Json(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            Body::Form(f) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Bytes::from(f)
            }
        };
        let req = req.body(Full::new(bytes)).map_err(|e| failed(url, e))?;
        let exchange = async {
            let res = self.client.request(req).await.map_err(|e| failed(url, e))?;
            let status = res.status().as_u16();
            let body = Limited::new(res.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| failed(url, e))?;
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| failed(url, "timed out"))?
    }

    /// The JSON of a 2xx answer (or `Null` for an empty one).
    pub async fn json(
        &self,
        method: hyper::Method,
        url: &str,
        authorization: Option<&str>,
        body: Body<'_>,
    ) -> Result<Value, ClientError> {
        let answer = self
            .send(method, url, authorization, body, self.timeout)
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(ClientError::Status {
                url: url.to_owned(),
                status: answer.status,
            });
        }
        if answer.body.is_empty() {
            return Ok(Value::Null);
        }
        answer.json(url)
    }
}

/// The stream's credentials: a configured bearer, or a client_credentials token fetched (and
/// fetched again when it is about to expire or was refused).
pub struct Credentials {
    auth: StreamAuth,
    cached: Mutex<Option<(String, Instant)>>,
}

impl Credentials {
    pub fn new(auth: StreamAuth) -> Self {
        Credentials {
            auth,
            cached: Mutex::new(None),
        }
    }

    /// The `Authorization` header value to send.
    pub async fn header(&self, http: &HttpClient) -> Result<String, ClientError> {
        let (token_endpoint, client_id, client_secret, scopes) = match &self.auth {
            StreamAuth::Bearer(b) => return Ok(format!("Bearer {}", b.0)),
            StreamAuth::ClientCredentials {
                token_endpoint,
                client_id,
                client_secret,
                scopes,
            } => (token_endpoint, client_id, client_secret, scopes),
        };
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(format!("Bearer {token}"));
        }
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = STANDARD.encode(format!("{}:{}", enc(client_id), enc(&client_secret.0)));
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if !scopes.is_empty() {
                form.append_pair("scope", &scopes.join(" "));
            }
            form.finish()
        };
        let answer = http
            .json(
                hyper::Method::POST,
                token_endpoint,
                Some(&format!("Basic {basic}")),
                Body::Form(form),
            )
            .await?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| failed(token_endpoint, "no access_token in the answer"))?
            .to_owned();
        let lifetime = answer
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(300)
            .clamp(10, 86_400);
        // used until 30 s (or a quarter of a short lifetime) before it expires
        let margin = (lifetime / 4).min(30);
        *cached = Some((
            token.clone(),
            Instant::now() + Duration::from_secs(lifetime - margin),
        ));
        Ok(format!("Bearer {token}"))
    }

    /// Forgets a fetched token (the transmitter refused it).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}
