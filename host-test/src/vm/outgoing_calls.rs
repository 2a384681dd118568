//! The filter's outgoing HTTP calls (`proxy_dispatch_http_call`): listing them, answering them
//! (`proxy_on_http_call_response`), and finding those past their deadline.

use super::{Vm, len_i32, signed};
use crate::abi::Status;
use crate::error::{HostError, Result};
use crate::http_calls::{CallAnswer, CallId, CallResponse, HttpCall};

impl Vm {
    /// Calls not answered yet, oldest first.
    pub fn pending_http_calls(&self) -> Vec<HttpCall> {
        self.store
            .data()
            .http_calls
            .pending
            .values()
            .cloned()
            .collect()
    }

    /// Every call this VM dispatched, answered or not, oldest first.
    pub fn dispatched_http_calls(&self) -> &[HttpCall] {
        &self.store.data().http_calls.dispatched
    }

    /// Answers call `token` and runs `proxy_on_http_call_response`.
    pub fn answer_http_call(&mut self, token: u32, answer: CallAnswer) -> Result<()> {
        let call = self
            .store
            .data_mut()
            .http_calls
            .pending
            .remove(&token)
            .ok_or_else(|| {
                HostError::Usage(format!("{}: no pending HTTP call {token}", self.name()))
            })?;
        let (headers, body, trailers) = match answer {
            CallAnswer::Response(response) => {
                let headers = response.header_map();
                let counts = (headers.len(), response.body.len(), response.trailers.len());
                self.store.data_mut().call_response = Some(CallResponse {
                    headers,
                    body: response.body,
                    trailers: response.trailers,
                });
                counts
            }
            CallAnswer::Reset => {
                self.store.data_mut().status = (Status::BrokenConnection as u32, "reset".into());
                (0, 0, 0)
            }
        };
        let result = self.call(
            "proxy_on_http_call_response",
            self.exports.on_http_call_response.clone(),
            (
                signed(call.context_id),
                signed(token),
                len_i32(headers),
                len_i32(body),
                len_i32(trailers),
            ),
            call.context_id,
        );
        let state = self.store.data_mut();
        state.call_response = None;
        state.status = (0, String::new());
        result?;
        self.drive_pending_streams()
    }

    /// Answers call `token` with a response.
    pub fn respond_http_call(&mut self, token: u32, response: crate::Response) -> Result<()> {
        self.answer_http_call(token, CallAnswer::Response(response))
    }

    /// The call ids of pending calls whose deadline is at or before `mono_nanos`.
    pub(crate) fn calls_due(&self, mono_nanos: u64) -> Vec<(u64, CallId)> {
        self.store
            .data()
            .http_calls
            .pending
            .values()
            .filter_map(|c| c.deadline_nanos.map(|d| (d, c.id)))
            .filter(|(d, _)| *d <= mono_nanos)
            .collect()
    }
}
