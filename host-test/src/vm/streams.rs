//! HTTP streams: a request through the filter's callbacks in Envoy's phase order, pauses and
//! continues, local replies passing back through the response callbacks, and the outcome.

use super::{Vm, len_i32, signed};
use crate::abi::{ACTION_CONTINUE, LogLevel};
use crate::error::{HostError, Result};
use crate::http::{Headers, LocalReply, Outcome, Reply, Request, StreamId, Upstream};
use crate::stream::{Phase, Stream};
use wasmtime::TypedFunc;

/// Finished streams kept for `Vm::outcome` lookups.
const FINISHED_KEPT: usize = 1024;

impl Vm {
    /// Runs a request through the filter and, if it reaches the upstream, the upstream's answer
    /// back through it. A request the filter pauses comes back as [`Outcome::Paused`]: answer
    /// what it waits for, then ask [`Vm::outcome`].
    pub fn request(&mut self, request: Request) -> Result<Outcome> {
        let id = self.send(request)?;
        Ok(self.outcome(id))
    }

    /// Starts a request and runs it as far as the filter lets it go.
    pub fn send(&mut self, request: Request) -> Result<StreamId> {
        let id = self.next_context_id();
        let root = self.store.data().contexts.root;
        self.store
            .data_mut()
            .streams
            .insert(id, Stream::new(request));
        self.call(
            "proxy_on_context_create",
            self.exports.on_context_create.clone(),
            (signed(id), signed(root)),
            id,
        )?;
        self.drive(id)?;
        Ok(StreamId(id))
    }

    /// Where stream `id` stands now.
    pub fn outcome(&self, id: StreamId) -> Outcome {
        match self.finished.get(&id.0) {
            Some((outcome, _)) => outcome.clone(),
            None => Outcome::Paused(id),
        }
    }

    /// Fuel the guest spent on stream `id` (all its callbacks), once it finished.
    pub fn stream_fuel(&self, id: StreamId) -> Option<u64> {
        self.finished.get(&id.0).map(|(_, fuel)| *fuel)
    }

    /// Streams paused by the filter.
    pub fn paused_streams(&self) -> Vec<StreamId> {
        self.store
            .data()
            .streams
            .iter()
            .filter(|(_, s)| s.outcome.is_none())
            .map(|(id, _)| StreamId(*id))
            .collect()
    }

    /// Drives every stream the filter asked something for during the last callback.
    pub(super) fn drive_pending_streams(&mut self) -> Result<()> {
        loop {
            let next = self
                .store
                .data()
                .streams
                .iter()
                .find(|(_, s)| s.has_pending_action())
                .map(|(id, _)| *id);
            match next {
                Some(id) => self.drive(id)?,
                None => return Ok(()),
            }
        }
    }

    fn stream(&mut self, id: u32) -> Result<&mut Stream> {
        self.store
            .data_mut()
            .streams
            .get_mut(&id)
            .ok_or_else(|| HostError::Usage(format!("no stream {id}")))
    }

    /// Moves stream `id` through Envoy's phases until it finishes or the filter pauses it.
    fn drive(&mut self, id: u32) -> Result<()> {
        loop {
            let stream = self.stream(id)?;
            if stream.outcome.is_some() {
                return Ok(());
            }
            if stream.reset_requested {
                return self.finish(id, Outcome::Reset);
            }
            if stream.local_reply.is_some() {
                if stream.replying_locally.is_some() {
                    // A second local reply while delivering one: Envoy cannot send it either.
                    stream.local_reply = None;
                    self.store.data_mut().note(
                        LogLevel::Warn,
                        "local reply sent while a local reply was being delivered: ignored"
                            .to_owned(),
                    );
                } else {
                    Self::begin_local_reply(stream);
                }
                continue;
            }
            if stream.paused {
                if !stream.continue_requested {
                    return Ok(());
                }
                stream.paused = false;
                stream.continue_requested = false;
                stream.phase = next_phase(stream);
                continue;
            }
            match stream.phase {
                Phase::Created => stream.phase = Phase::RequestHeaders,
                Phase::RequestHeaders => {
                    let n = len_i32(stream.request_headers.len());
                    let eos = i32::from(stream.request.body.is_none());
                    let f = self.exports.on_request_headers.clone();
                    self.stream_callback(id, "proxy_on_request_headers", f, (signed(id), n, eos))?;
                }
                Phase::RequestBody => {
                    let n = len_i32(stream.request_body.len());
                    let f = self.exports.on_request_body.clone();
                    self.stream_callback(id, "proxy_on_request_body", f, (signed(id), n, 1))?;
                }
                Phase::Upstream => {
                    let body = stream
                        .request
                        .body
                        .as_ref()
                        .map(|_| stream.request_body.clone());
                    stream.forwarded = Some((stream.request_headers.clone(), body));
                    let response = stream.request.upstream_response.clone();
                    stream.response_headers = response.header_map();
                    stream.response_body = response.body;
                    stream.phase = Phase::ResponseHeaders;
                }
                Phase::ResponseHeaders => {
                    let n = len_i32(stream.response_headers.len());
                    let eos = i32::from(stream.response_body.is_empty());
                    let f = self.exports.on_response_headers.clone();
                    self.stream_callback(id, "proxy_on_response_headers", f, (signed(id), n, eos))?;
                }
                Phase::ResponseBody => {
                    let n = len_i32(stream.response_body.len());
                    let f = self.exports.on_response_body.clone();
                    self.stream_callback(id, "proxy_on_response_body", f, (signed(id), n, 1))?;
                }
                Phase::Done => {
                    let outcome = Self::final_outcome(stream);
                    return self.finish(id, outcome);
                }
            }
        }
    }

    /// Runs one stream callback; `Pause` leaves the stream waiting for `proxy_continue_stream`.
    fn stream_callback(
        &mut self,
        id: u32,
        name: &str,
        func: Option<TypedFunc<(i32, i32, i32), i32>>,
        params: (i32, i32, i32),
    ) -> Result<()> {
        self.stream(id)?.continue_requested = false;
        let action = self.call(name, func, params, id)?;
        let stream = self.stream(id)?;
        if stream.local_reply.is_some() || stream.reset_requested {
            // Envoy ignores the callback's verdict once a local reply or reset is on its way.
            return Ok(());
        }
        match action {
            None | Some(ACTION_CONTINUE) => stream.phase = next_phase(stream),
            Some(_) => stream.paused = true,
        }
        Ok(())
    }

    /// Envoy's local reply: `:status`, the filter's headers, content-length and (if missing)
    /// `content-type: text/plain` for a non-empty body; then it passes through the response
    /// callbacks of the same filter.
    fn begin_local_reply(stream: &mut Stream) {
        let Some(reply) = stream.local_reply.take() else {
            return;
        };
        let mut headers = Headers::new();
        headers.add(":status", reply.status.to_string());
        for (k, v) in reply.headers.iter() {
            headers.add(k, v);
        }
        if !reply.body.is_empty() {
            headers.replace("content-length", reply.body.len().to_string());
            if !headers.contains("content-type") {
                headers.add("content-type", "text/plain");
            }
        }
        stream.replying_locally = Some((reply.details, reply.grpc_status));
        stream.response_headers = headers;
        stream.response_body = reply.body;
        stream.paused = false;
        stream.continue_requested = false;
        stream.phase = Phase::ResponseHeaders;
    }

    fn final_outcome(stream: &Stream) -> Outcome {
        let reply = Reply {
            status: stream
                .response_headers
                .get(":status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            headers: stream.response_headers.clone(),
            body: stream.response_body.clone(),
        };
        match (&stream.replying_locally, &stream.forwarded) {
            (Some((details, grpc_status)), _) => Outcome::LocalReply(LocalReply {
                reply,
                details: details.clone(),
                grpc_status: *grpc_status,
            }),
            (None, Some((headers, body))) => Outcome::Continued(Upstream {
                request_headers: headers.clone(),
                request_body: body.clone(),
                reply,
            }),
            (None, None) => Outcome::Reset,
        }
    }

    /// Ends the stream: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`.
    fn finish(&mut self, id: u32, outcome: Outcome) -> Result<()> {
        let stream = self.stream(id)?;
        stream.outcome = Some(outcome.clone());
        stream.phase = Phase::Done;
        let context = signed(id);
        let result = self
            .call("proxy_on_done", self.exports.on_done.clone(), context, id)
            .and_then(|_| self.call("proxy_on_log", self.exports.on_log.clone(), context, id))
            .and_then(|_| {
                self.call(
                    "proxy_on_delete",
                    self.exports.on_delete.clone(),
                    context,
                    id,
                )
            });
        let fuel = self
            .store
            .data_mut()
            .streams
            .remove(&id)
            .map_or(0, |s| s.fuel);
        self.finished.insert(id, (outcome, fuel));
        self.finished_order.push_back(id);
        while self.finished_order.len() > FINISHED_KEPT {
            if let Some(old) = self.finished_order.pop_front() {
                self.finished.remove(&old);
            }
        }
        result.map(|_| ())
    }
}

/// The phase after the current one completes.
fn next_phase(stream: &Stream) -> Phase {
    match stream.phase {
        Phase::Created => Phase::RequestHeaders,
        Phase::RequestHeaders if stream.request.body.is_some() => Phase::RequestBody,
        Phase::RequestHeaders | Phase::RequestBody => Phase::Upstream,
        Phase::Upstream => Phase::ResponseHeaders,
        Phase::ResponseHeaders if !stream.response_body.is_empty() => Phase::ResponseBody,
        Phase::ResponseHeaders | Phase::ResponseBody | Phase::Done => Phase::Done,
    }
}
