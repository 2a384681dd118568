//! The Shared Signals (SSF 1.0) receiver of the hub: each configured transmitter's Security
//! Event Tokens — pushed to `POST /ssf/push/{stream}` (RFC 8935) or polled (RFC 8936) — become
//! the same cut-offs and denials a back-channel logout does, on the revocation feed every
//! gateway reads.
//!
//! - [`set`]: one SET's checks (typ, keys, iss, aud, iat, jti, no sub/exp);
//! - [`subject`]: RFC 9493 subject identifiers;
//! - [`events`]: CAEP/RISC/OAuth events → effects;
//! - [`receive`]: the transaction that stores a SET's `jti` with its effects, before any ack;
//! - [`stream`]: the transmitter's configuration, the stream (created or read), its status,
//!   verification;
//! - [`poll`]: the RFC 8936 loop; [`client`]: HTTP and the stream's OAuth token.

pub mod client;
pub mod events;
pub mod poll;
pub mod receive;
pub mod set;
pub mod stream;
pub mod subject;

use crate::settings::{Delivery, Federation, SsfStream};
use crate::store::Store;
use client::{Credentials, HttpClient};
use set::SetKeys;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// The least time between two key fetches asked by SETs naming an unknown key.
pub const MIN_KEY_REFETCH: Duration = Duration::from_secs(10);

/// Counts an outcome: `(endpoint, outcome)` (the IDP's `idp_federation_requests_total`).
pub type Count = Arc<dyn Fn(&'static str, &'static str) + Send + Sync>;

/// One configured stream at run time.
pub struct StreamRuntime {
    pub config: SsfStream,
    keys: RwLock<Arc<SetKeys>>,
    jwks_uri: RwLock<Option<String>>,
    last_key_fetch: tokio::sync::Mutex<Option<Instant>>,
    credentials: Credentials,
    http: HttpClient,
    /// The stream's status as last heard (`enabled`, `paused`, `disabled`, or `unknown`).
    status: RwLock<String>,
    /// The `state` of the verification event asked for and not received yet.
    verification: Mutex<Option<String>>,
    /// Whether a verification event with our state came back since the start.
    verified: std::sync::atomic::AtomicBool,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    match lock.read() {
        Ok(v) => v.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn write<T>(lock: &RwLock<T>, value: T) {
    match lock.write() {
        Ok(mut v) => *v = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}

impl StreamRuntime {
    fn new(config: SsfStream, http: HttpClient) -> Self {
        StreamRuntime {
            credentials: Credentials::new(config.auth.clone()),
            config,
            keys: RwLock::new(Arc::new(SetKeys::default())),
            jwks_uri: RwLock::new(None),
            last_key_fetch: tokio::sync::Mutex::new(None),
            http,
            status: RwLock::new("unknown".to_owned()),
            verification: Mutex::new(None),
            verified: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn keys(&self) -> Arc<SetKeys> {
        read(&self.keys)
    }

    /// The stream's status as last heard.
    pub fn status(&self) -> String {
        read(&self.status)
    }

    /// Fetches the transmitter's JWKS unless a fetch started less than `min_interval` ago;
    /// `true` if new keys were installed (a failed fetch keeps the last good set).
    pub async fn refresh_keys(&self, min_interval: Duration) -> bool {
        let Some(uri) = read(&self.jwks_uri) else {
            return false;
        };
        let mut last = self.last_key_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < min_interval) {
            return false;
        }
        *last = Some(Instant::now());
        let answer = self
            .http
            .json(hyper::Method::GET, &uri, None, client::Body::None)
            .await;
        let parsed = answer
            .ok()
            .and_then(|v| SetKeys::parse(v.to_string().as_bytes()));
        match parsed {
            Some((keys, skipped)) if !keys.is_empty() => {
                for why in skipped {
                    tracing::info!(stream = %self.config.name, %why, "transmitter key skipped");
                }
                write(&self.keys, Arc::new(keys));
                true
            }
            _ => {
                tracing::warn!(stream = %self.config.name, jwks_uri = %uri, "fetching the transmitter's keys failed; keeping the last good ones");
                false
            }
        }
    }

    /// A stream status heard (from the status endpoint or a stream-updated event).
    pub fn status_changed(&self, status: &str, reason: Option<&str>, count: &Count) {
        let label = match status {
            "enabled" => "stream_enabled",
            "paused" => "stream_paused",
            "disabled" => "stream_disabled",
            _ => "stream_status_unknown",
        };
        count("ssf_stream", label);
        let reason = reason.unwrap_or("");
        if status == "enabled" {
            tracing::info!(stream = %self.config.name, status, reason, "SSF stream status");
        } else {
            tracing::error!(stream = %self.config.name, status, reason, "SSF stream is not enabled: the transmitter sends no events on it");
        }
        write(&self.status, status.chars().take(32).collect());
    }

    fn verified(&self, state: Option<&str>, count: &Count) {
        let mut pending = match self.verification.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if pending.is_some() && pending.as_deref() == state {
            *pending = None;
            self.verified
                .store(true, std::sync::atomic::Ordering::Relaxed);
            count("ssf_stream", "verified");
            tracing::info!(stream = %self.config.name, "SSF stream verified (the verification event came back with our state)");
        } else {
            count("ssf_stream", "verification_unexpected");
            tracing::warn!(stream = %self.config.name, "a verification event with a state this hub did not ask for");
        }
    }

    fn expect_verification(&self, state: String) {
        let mut pending = match self.verification.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *pending = Some(state);
    }

    /// Whether the stream was verified since the start.
    pub fn verified_once(&self) -> bool {
        self.verified.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a verification asked for is still awaited.
    pub fn awaiting_verification(&self) -> bool {
        match self.verification.lock() {
            Ok(g) => g.is_some(),
            Err(p) => p.into_inner().is_some(),
        }
    }
}

/// Every configured stream.
#[derive(Default)]
pub struct Receiver {
    streams: Vec<Arc<StreamRuntime>>,
}

impl Receiver {
    pub fn new(federation: &Federation) -> Self {
        Receiver {
            streams: federation
                .ssf_streams
                .iter()
                .map(|c| {
                    let http =
                        HttpClient::with_timeout(Duration::from_secs(c.request_timeout_seconds));
                    Arc::new(StreamRuntime::new(c.clone(), http))
                })
                .collect(),
        }
    }

    pub fn stream(&self, name: &str) -> Option<&Arc<StreamRuntime>> {
        self.streams.iter().find(|s| s.config.name == name)
    }

    /// Starts every stream: set-up then the poll loop (poll), or set-up alone (push), each
    /// retried with backoff until it works; runs until the process ends.
    pub fn spawn(&self, store: Arc<dyn Store>, federation: &Federation, count: Count) {
        for stream in &self.streams {
            let stream = Arc::clone(stream);
            let store = Arc::clone(&store);
            let issuers = federation.issuers.clone();
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                match stream.config.delivery {
                    Delivery::Poll { .. } => poll::run(&stream, &*store, &issuers, &count).await,
                    Delivery::Push { .. } => {
                        stream::set_up_until_done(&stream, &count).await;
                    }
                }
            });
        }
    }
}
