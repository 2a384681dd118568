//! RFC 8936 poll delivery: `POST` to the stream's `delivery.endpoint_url` with `ack` (the
//! `jti`s stored since the last request), `setErrs` (those refused, with the RFC 8935 §2.4
//! codes), `maxEvents` and `returnImmediately` — member names exactly as the RFC spells them —
//! and the answer's `sets` (`jti` → SET) and `moreAvailable`. A long poll is held by the
//! transmitter; `return_immediately` polls are paced by `poll_interval_seconds`. A SET whose
//! storing failed is neither acknowledged nor reported: the transmitter delivers it again.

use super::client::Body;
use super::receive::{ReceiveError, Received, receive};
use super::stream::{Connected, backoff, set_up_until_done};
use super::{Count, StreamRuntime};
use crate::settings::{Delivery, FederatedIssuer, PollMode};
use crate::store::Store;
use hyper::Method;
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Consecutive failed polls after which the stream is set up again.
const FAILURES_BEFORE_SETUP: u32 = 5;
/// The longest `jti` key of a poll answer taken.
const MAX_JTI_BYTES: usize = 256;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Sets the stream up and polls it, for ever (set up again after repeated failures or when the
/// stream stops being enabled).
pub async fn run(
    stream: &StreamRuntime,
    store: &dyn Store,
    issuers: &[FederatedIssuer],
    count: &Count,
) {
    let Delivery::Poll {
        interval_seconds, ..
    } = stream.config.delivery
    else {
        return;
    };
    loop {
        let connected = set_up_until_done(stream, count).await;
        if stream.status() != "enabled" {
            // paused or disabled: nothing is delivered; look again later
            tokio::time::sleep(Duration::from_secs(interval_seconds.max(10))).await;
            continue;
        }
        poll_stream(stream, &connected, store, issuers, count).await;
    }
}

/// What one poll answer held.
struct Batch {
    sets: Map<String, Value>,
    more: bool,
}

fn parse_answer(body: &Value) -> Option<Batch> {
    let sets = body.get("sets")?.as_object()?.clone();
    let more = match body.get("moreAvailable") {
        None => false,
        Some(v) => v.as_bool()?,
    };
    Some(Batch { sets, more })
}

/// Polls until the stream must be set up again.
async fn poll_stream(
    stream: &StreamRuntime,
    connected: &Connected,
    store: &dyn Store,
    issuers: &[FederatedIssuer],
    count: &Count,
) {
    let Delivery::Poll {
        mode,
        interval_seconds,
        long_poll_seconds,
        max_events,
    } = stream.config.delivery
    else {
        return;
    };
    let Some(url) = connected.poll_url.as_deref() else {
        return;
    };
    let name = &stream.config.name;
    let mut acks: Vec<String> = Vec::new();
    let mut errs: Map<String, Value> = Map::new();
    let mut failures = 0u32;
    let mut leaving = false;
    loop {
        let immediately = mode == PollMode::ReturnImmediately || leaving;
        let mut request = json!({
            "ack": acks,
            "maxEvents": if leaving { 0 } else { max_events },
            "returnImmediately": immediately,
        });
        if !errs.is_empty() {
            request["setErrs"] = Value::Object(errs.clone());
        }
        let timeout = if immediately {
            stream.http.timeout
        } else {
            Duration::from_secs(long_poll_seconds) + stream.http.timeout
        };
        let answer = match stream.credentials.header(&stream.http).await {
            Ok(auth) => {
                stream
                    .http
                    .send(
                        Method::POST,
                        url,
                        Some(&auth),
                        Body::Json(&request),
                        timeout,
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        let batch = match answer {
            Ok(a) if a.status == 200 => match a.json(url).ok().as_ref().and_then(parse_answer) {
                Some(b) => Ok(b),
                None => {
                    count("ssf_poll", "garbage_answer");
                    Err("the poll answer is not {\"sets\": {…}, \"moreAvailable\": …}".to_owned())
                }
            },
            Ok(a) => {
                if a.status == 401 {
                    stream.credentials.forget().await;
                }
                count("ssf_poll", "transmitter_error");
                Err(format!("the transmitter answered HTTP {}", a.status))
            }
            Err(e) => {
                count("ssf_poll", "transmitter_unreachable");
                Err(e.to_string())
            }
        };
        let batch = match batch {
            Ok(b) => b,
            Err(why) => {
                // the acks and errors are sent again with the next request
                tracing::warn!(stream = %name, error = %why, "polling the SSF transmitter failed");
                failures += 1;
                if failures >= FAILURES_BEFORE_SETUP {
                    return;
                }
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        failures = 0;
        acks.clear();
        errs.clear();
        if leaving {
            return;
        }
        let mut store_failed = false;
        let received = batch.sets.len();
        for (jti, set) in batch.sets {
            if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
                // reported, so that the transmitter does not deliver it for ever
                count("ssf_poll", "no_jti");
                errs.insert(
                    jti,
                    json!({"err": "invalid_request", "description": "the SET's jti is empty or longer than 256 bytes"}),
                );
                continue;
            }
            let Some(token) = set.as_str() else {
                count("ssf_poll", "malformed");
                errs.insert(
                    jti,
                    json!({"err": "invalid_request", "description": "the SET is not a string"}),
                );
                continue;
            };
            match receive(stream, store, issuers, token, Some(&jti), unix_now(), count).await {
                Ok(r) => {
                    count(
                        "ssf_poll",
                        match r {
                            Received::Stored { .. } => "stored",
                            Received::Redelivered => "redelivered",
                        },
                    );
                    acks.push(jti);
                }
                Err(ReceiveError::Invalid(e)) => {
                    count("ssf_poll", e.name());
                    tracing::warn!(stream = %name, %jti, error = %e, "SET refused");
                    errs.insert(jti, json!({"err": e.err(), "description": e.to_string()}));
                }
                Err(ReceiveError::NotReady) => {
                    count("ssf_poll", "not_ready");
                    tracing::warn!(stream = %name, %jti, "SET before the transmitter's keys were loaded; it is not acknowledged");
                    store_failed = true;
                }
                Err(ReceiveError::Store(e)) => {
                    count("ssf_poll", "unavailable");
                    tracing::warn!(stream = %name, %jti, error = %e, "storing a SET failed; it is not acknowledged");
                    store_failed = true;
                }
            }
        }
        if stream.status() != "enabled" {
            // acknowledge what was stored, then set the stream up again
            leaving = true;
            continue;
        }
        if store_failed {
            tokio::time::sleep(backoff(2)).await;
        } else if mode == PollMode::ReturnImmediately
            && received == 0
            && !batch.more
            && acks.is_empty()
            && errs.is_empty()
        {
            tokio::time::sleep(Duration::from_secs(interval_seconds)).await;
        }
    }
}
