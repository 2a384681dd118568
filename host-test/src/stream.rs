//! One HTTP stream's state inside a VM: its header maps and bodies, which of them the filter may
//! touch right now (Envoy hands them out only during the matching callback, or while the filter
//! keeps the stream paused there), and the actions the filter asked for.

use crate::abi::MapType;
use crate::http::{Headers, Outcome, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Context created, no callback yet.
    Created,
    RequestHeaders,
    RequestBody,
    /// The request went upstream; waiting for the upstream response.
    Upstream,
    ResponseHeaders,
    ResponseBody,
    Done,
}

/// A local reply the filter asked for, delivered after the current callback returns (Envoy
/// defers it the same way).
#[derive(Debug, Clone)]
pub(crate) struct PendingLocalReply {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: Headers,
    pub grpc_status: i32,
}

#[derive(Debug)]
pub(crate) struct Stream {
    pub phase: Phase,
    pub request: Request,
    pub request_headers: Headers,
    pub request_body: Vec<u8>,
    pub response_headers: Headers,
    pub response_body: Vec<u8>,
    /// The filter returned `Pause` from the callback of `phase`.
    pub paused: bool,
    /// `proxy_continue_stream` was called for the current phase.
    pub continue_requested: bool,
    pub local_reply: Option<PendingLocalReply>,
    /// The response phase is delivering a local reply (details, gRPC status).
    pub replying_locally: Option<(String, i32)>,
    pub reset_requested: bool,
    /// The request as forwarded upstream.
    pub forwarded: Option<(Headers, Option<Vec<u8>>)>,
    pub outcome: Option<Outcome>,
    /// Fuel the guest spent on this stream's callbacks.
    pub fuel: u64,
}

impl Stream {
    pub fn new(request: Request) -> Self {
        Stream {
            phase: Phase::Created,
            request_headers: request.header_map(),
            request_body: request.body.clone().unwrap_or_default(),
            request,
            response_headers: Headers::new(),
            response_body: Vec::new(),
            paused: false,
            continue_requested: false,
            local_reply: None,
            replying_locally: None,
            reset_requested: false,
            forwarded: None,
            outcome: None,
            fuel: 0,
        }
    }

    /// The map the filter may read and change now, if any (Envoy's `getMap`). Request headers
    /// are gone once the filter continued past them; response headers appear with the response.
    pub fn map_mut(&mut self, map: MapType) -> Option<&mut Headers> {
        match map {
            MapType::HttpRequestHeaders
                if self.phase == Phase::RequestHeaders && !self.continue_requested =>
            {
                Some(&mut self.request_headers)
            }
            MapType::HttpResponseHeaders
                if self.phase == Phase::ResponseHeaders && !self.continue_requested =>
            {
                Some(&mut self.response_headers)
            }
            _ => None,
        }
    }

    pub fn map(&self, map: MapType) -> Option<&Headers> {
        match map {
            MapType::HttpRequestHeaders
                if self.phase == Phase::RequestHeaders && !self.continue_requested =>
            {
                Some(&self.request_headers)
            }
            MapType::HttpResponseHeaders
                if self.phase == Phase::ResponseHeaders && !self.continue_requested =>
            {
                Some(&self.response_headers)
            }
            _ => None,
        }
    }

    pub fn request_body_mut(&mut self) -> Option<&mut Vec<u8>> {
        (self.phase == Phase::RequestBody).then_some(&mut self.request_body)
    }

    pub fn response_body_mut(&mut self) -> Option<&mut Vec<u8>> {
        (self.phase == Phase::ResponseBody).then_some(&mut self.response_body)
    }

    /// Request headers as the CEL-style properties see them (only while still available).
    pub fn visible_request_headers(&self) -> Option<&Headers> {
        self.map(MapType::HttpRequestHeaders)
    }

    /// Something for the host to do once the current callback returns.
    pub fn has_pending_action(&self) -> bool {
        self.outcome.is_none()
            && (self.local_reply.is_some()
                || self.reset_requested
                || (self.paused && self.continue_requested))
    }
}
