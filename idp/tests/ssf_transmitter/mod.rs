//! An independent SSF 1.0 transmitter for the receiver tests, written from the specifications'
//! text and examples (SSF 1.0 §7 configuration metadata and §8 stream management, RFC 8417 SETs,
//! RFC 9493 subjects, RFC 8935 push, RFC 8936 poll) — not from the IDP's transmitter. Its keys
//! are its own: ES256 through RustCrypto's `p256` (test-support's minter) and RS256 through
//! aws-lc-rs, neither of which the receiver's `jsonwebtoken` verification shares.
//!
//! It serves, on loopback: `/.well-known/ssf-configuration`, `/jwks`, `/token`
//! (client_credentials, client_secret_basic), `/streams` (POST creates, 409 if one exists; GET
//! reads; PATCH updates delivery), `/status`, `/verify`, `/poll/{id}` (RFC 8936: records every
//! `ack` and `setErrs` entry, long-polls up to 5 s unless `returnImmediately`), and pushes SETs
//! to the receiver's `endpoint_url` with its `authorization_header` ([`Transmitter::push`]).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_support::{Issuer, b64};

pub const CLIENT: (&str, &str) = ("hub-client", "hub-client-secret");
pub const BEARER: &str = "static-management-token";
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const STREAM_UPDATED: &str =
    "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";
const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

/// How the poll endpoint misbehaves, when asked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollFault {
    None,
    Garbage,
    ServerError,
    /// Answers after this many milliseconds.
    Slow(u64),
}

#[derive(Default)]
pub struct Recorded {
    pub acks: Vec<String>,
    pub set_errs: BTreeMap<String, Value>,
    pub polls: usize,
    pub poll_requests: Vec<Value>,
    pub verification_states: Vec<String>,
    pub tokens_issued: usize,
}

pub struct Shared {
    pub issuer: String,
    /// The audience its streams' SETs carry.
    pub audience: String,
    pub stream: Mutex<Option<Value>>,
    pub status: Mutex<String>,
    /// SETs waiting for poll delivery (jti, SET), in order; removed when acked or errored.
    pub queue: Mutex<VecDeque<(String, String)>>,
    pub recorded: Mutex<Recorded>,
    pub fault: Mutex<PollFault>,
    pub woken: tokio::sync::Notify,
}

pub struct Transmitter {
    pub shared: Arc<Shared>,
    pub es: Issuer,
    pub rsa: RsaKeyPair,
    /// A key the transmitter does not publish (signature by another key).
    pub rogue: Issuer,
    jti: AtomicU64,
}

impl Transmitter {
    /// Starts on loopback; `configured_issuer`: what its configuration document names (its own
    /// issuer unless a test wants a mismatch).
    pub async fn start(audience: &str, configured_issuer: Option<&str>) -> Arc<Transmitter> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der =
            aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
        let rsa = RsaKeyPair::from_pkcs8(der.as_ref()).unwrap();
        let shared = Arc::new(Shared {
            issuer: issuer.clone(),
            audience: audience.to_owned(),
            stream: Mutex::new(None),
            status: Mutex::new("enabled".into()),
            queue: Mutex::new(VecDeque::new()),
            recorded: Mutex::new(Recorded::default()),
            fault: Mutex::new(PollFault::None),
            woken: tokio::sync::Notify::new(),
        });
        let es = Issuer::es256(21, "tx-es");
        let rsa_public = key.public_key();
        let jwks = json!({"keys": [
            es.jwk(),
            {"kty": "RSA", "kid": "tx-rsa", "alg": "RS256", "use": "sig",
             "n": b64(rsa_public.modulus().big_endian_without_leading_zero()),
             "e": b64(rsa_public.exponent().big_endian_without_leading_zero())}
        ]});
        let config = json!({
            "spec_version": "1_0",
            "issuer": configured_issuer.unwrap_or(&issuer),
            "jwks_uri": format!("{issuer}/jwks"),
            "delivery_methods_supported": ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"],
            "configuration_endpoint": format!("{issuer}/streams"),
            "status_endpoint": format!("{issuer}/status"),
            "verification_endpoint": format!("{issuer}/verify"),
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
        });
        let tx = Arc::new(Transmitter {
            shared: Arc::clone(&shared),
            es,
            rsa,
            rogue: Issuer::es256(22, "tx-es"),
            jti: AtomicU64::new(1),
        });
        let app = Router::new()
            .route(
                "/.well-known/ssf-configuration",
                get(move || {
                    let c = config.clone();
                    async move { axum::Json(c) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let j = jwks.clone();
                    async move { axum::Json(j) }
                }),
            )
            .route("/token", post(token))
            .route(
                "/streams",
                post(create_stream).get(read_stream).patch(update_stream),
            )
            .route("/status", get(status))
            .route("/verify", post(verify))
            .route("/poll/{id}", post(poll))
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move { axum::serve(listener, app).await });
        tx
    }

    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    pub fn next_jti(&self) -> String {
        format!("set-{}", self.jti.fetch_add(1, Ordering::SeqCst))
    }

    /// SET claims per SSF 1.0 §4: iss, aud, iat, jti, sub_id, events (`change`: members to
    /// replace, `null` removes).
    pub fn claims(&self, sub_id: Value, events: Value, change: Value) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut c = json!({
            "iss": self.shared.issuer, "aud": self.shared.audience, "iat": now,
            "jti": self.next_jti(), "sub_id": sub_id, "events": events,
        });
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    /// ES256, `typ: secevent+jwt` (RFC 8417 §2.3).
    pub fn es256(&self, claims: &Value) -> String {
        self.es.sign(
            &json!({"alg": "ES256", "typ": "secevent+jwt", "kid": "tx-es"}),
            claims,
        )
    }

    pub fn rs256(&self, claims: &Value) -> String {
        self.rs256_with(
            &json!({"alg": "RS256", "typ": "secevent+jwt", "kid": "tx-rsa"}),
            claims,
        )
    }

    pub fn rs256_with(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.rsa.public_modulus_len()];
        self.rsa
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", b64(&sig))
    }

    /// Queues a SET for poll delivery under its `jti`.
    pub fn queue(&self, set: &str) -> String {
        let jti = jti_of(set);
        self.shared
            .queue
            .lock()
            .unwrap()
            .push_back((jti.clone(), set.to_owned()));
        self.shared.woken.notify_waiters();
        jti
    }

    /// Queues a SET under a `jti` of the caller's choice.
    pub fn queue_as(&self, jti: &str, set: &str) {
        self.shared
            .queue
            .lock()
            .unwrap()
            .push_back((jti.to_owned(), set.to_owned()));
        self.shared.woken.notify_waiters();
    }

    /// Pushes a SET to the stream's endpoint (RFC 8935 §2): `(status, JSON body or Null)`.
    pub async fn push(&self, set: &str) -> (u16, Value) {
        self.push_raw(set.as_bytes().to_vec(), "application/secevent+jwt", None)
            .await
    }

    pub async fn push_raw(
        &self,
        body: Vec<u8>,
        content_type: &str,
        authorization: Option<&str>,
    ) -> (u16, Value) {
        let stream = self
            .shared
            .stream
            .lock()
            .unwrap()
            .clone()
            .expect("no stream");
        let url = stream["delivery"]["endpoint_url"]
            .as_str()
            .unwrap()
            .to_owned();
        let auth = authorization.map(str::to_owned).unwrap_or_else(|| {
            stream["delivery"]["authorization_header"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        http_post(&url, &auth, content_type, body).await
    }

    pub fn stream(&self) -> Option<Value> {
        self.shared.stream.lock().unwrap().clone()
    }

    pub fn set_status(&self, status: &str) {
        *self.shared.status.lock().unwrap() = status.to_owned();
    }

    pub fn set_fault(&self, fault: PollFault) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    pub fn acks(&self) -> Vec<String> {
        self.shared.recorded.lock().unwrap().acks.clone()
    }

    pub fn set_errs(&self) -> BTreeMap<String, Value> {
        self.shared.recorded.lock().unwrap().set_errs.clone()
    }

    pub fn polls(&self) -> usize {
        self.shared.recorded.lock().unwrap().polls
    }

    pub fn pending(&self) -> usize {
        self.shared.queue.lock().unwrap().len()
    }

    pub fn verification_states(&self) -> Vec<String> {
        self.shared
            .recorded
            .lock()
            .unwrap()
            .verification_states
            .clone()
    }

    /// Waits (up to `within`) until `done` holds.
    pub async fn until(&self, within: Duration, done: impl Fn(&Transmitter) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if done(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        done(self)
    }
}

pub fn jti_of(set: &str) -> String {
    use base64::Engine;
    let payload = set.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["jti"].as_str().unwrap().to_owned()
}

/// A minimal HTTP/1.1 POST over a fresh loopback connection (the transmitter's own client).
pub async fn http_post(url: &str, auth: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nContent-Type: {content_type}\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The configured management bearer, or the token `/token` issues.
fn authorized(_shared: &Shared, headers: &HeaderMap) -> bool {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    given == format!("Bearer {BEARER}") || given == "Bearer issued-token-1"
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", CLIENT.0, CLIENT.1))
    );
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) || !body.contains("grant_type=client_credentials") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    shared.recorded.lock().unwrap().tokens_issued += 1;
    axum::Json(
        json!({"access_token": "issued-token-1", "token_type": "Bearer", "expires_in": 3600}),
    )
    .into_response()
}

async fn create_stream(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::Json(request): axum::Json<Value>,
) -> Response {
    if !authorized(&shared, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut stream = shared.stream.lock().unwrap();
    if stream.is_some() {
        return StatusCode::CONFLICT.into_response();
    }
    let id = "stream-1";
    let mut delivery = request["delivery"].clone();
    if delivery["method"] == "urn:ietf:rfc:8936" {
        delivery["endpoint_url"] = json!(format!("{}/poll/{id}", shared.issuer));
    }
    let created = json!({
        "stream_id": id, "iss": shared.issuer, "aud": shared.audience,
        "delivery": delivery,
        "events_supported": [SESSION_REVOKED],
        "events_requested": request["events_requested"],
        "events_delivered": [SESSION_REVOKED],
    });
    *stream = Some(created.clone());
    (StatusCode::CREATED, axum::Json(created)).into_response()
}

async fn read_stream(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !authorized(&shared, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match shared.stream.lock().unwrap().clone() {
        Some(s) => axum::Json(json!([s])).into_response(),
        None => axum::Json(json!([])).into_response(),
    }
}

async fn update_stream(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::Json(request): axum::Json<Value>,
) -> Response {
    if !authorized(&shared, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut stream = shared.stream.lock().unwrap();
    match stream.as_mut() {
        Some(s) if s["stream_id"] == request["stream_id"] => {
            let mut delivery = request["delivery"].clone();
            if delivery["method"] == "urn:ietf:rfc:8936" {
                delivery["endpoint_url"] = s["delivery"]["endpoint_url"].clone();
            }
            s["delivery"] = delivery;
            axum::Json(s.clone()).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn status(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(&shared, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let status = shared.status.lock().unwrap().clone();
    axum::Json(json!({"stream_id": q.get("stream_id"), "status": status})).into_response()
}

async fn verify(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::Json(request): axum::Json<Value>,
) -> Response {
    if !authorized(&shared, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let state = request["state"].as_str().unwrap_or("").to_owned();
    shared
        .recorded
        .lock()
        .unwrap()
        .verification_states
        .push(state);
    StatusCode::NO_CONTENT.into_response()
}

async fn poll(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    headers: HeaderMap,
    axum::Json(request): axum::Json<Value>,
) -> Response {
    if !authorized(&shared, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    {
        let mut rec = shared.recorded.lock().unwrap();
        rec.polls += 1;
        rec.poll_requests.push(request.clone());
        let mut queue = shared.queue.lock().unwrap();
        for a in request["ack"].as_array().cloned().unwrap_or_default() {
            let a = a.as_str().unwrap().to_owned();
            queue.retain(|(j, _)| *j != a);
            rec.acks.push(a);
        }
        if let Some(errs) = request["setErrs"].as_object() {
            for (j, e) in errs {
                queue.retain(|(q, _)| q != j);
                rec.set_errs.insert(j.clone(), e.clone());
            }
        }
    }
    let fault = *shared.fault.lock().unwrap();
    match fault {
        PollFault::Garbage => return (StatusCode::OK, "{\"sets\": [1, 2").into_response(),
        PollFault::ServerError => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        PollFault::Slow(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        PollFault::None => {}
    }
    let max = request["maxEvents"].as_u64().unwrap_or(100) as usize;
    let immediately = request["returnImmediately"].as_bool().unwrap_or(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let woken = shared.woken.notified();
        {
            let queue = shared.queue.lock().unwrap();
            if !queue.is_empty() || immediately || max == 0 {
                let mut sets = Map::new();
                for (j, s) in queue.iter().take(max) {
                    sets.insert(j.clone(), json!(s));
                }
                let more = queue.len() > sets.len();
                return axum::Json(json!({"sets": sets, "moreAvailable": more})).into_response();
            }
        }
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            return axum::Json(json!({"sets": {}, "moreAvailable": false})).into_response();
        }
    }
}

/// Verification: the transmitter answers a verification request with a verification SET
/// carrying the receiver's `state` (SSF 1.0 §8.1.4), queued for poll delivery.
pub fn verification_set(tx: &Transmitter, state: &str) -> String {
    let stream_id = tx.stream().unwrap()["stream_id"]
        .as_str()
        .unwrap()
        .to_owned();
    tx.es256(&tx.claims(
        json!({"format": "opaque", "id": stream_id}),
        json!({VERIFICATION: {"state": state}}),
        json!({}),
    ))
}
