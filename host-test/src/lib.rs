//! # host-test: run a proxy-wasm filter without Envoy
//!
//! A [wasmtime] host implementing the proxy-wasm ABI 0.2.1 the way Envoy 1.40 does, so a
//! filter's behaviour can be tested with plain `cargo test`, in parallel, in milliseconds.
//!
//! ```no_run
//! use host_test::{EnvoyOptions, Host, Request, Response};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), host_test::HostError> {
//! let host = Host::filter()?; // $FILTER_WASM or target/…/wasm32-wasip1/release/filter.wasm
//! let mut envoy = host.envoy(EnvoyOptions::new().workers(2).plugin_config(r#"{"providers":[]}"#))?;
//! envoy.advance(Duration::from_secs(1))?; // ticks fire, calls time out, in time order
//! for call in envoy.pending_http_calls() {
//!     envoy.respond(call.id, Response::json(200, r#"{"keys":[]}"#))?;
//! }
//! let outcome = envoy.request(Request::get("/api/hello").bearer("eyJ…"))?;
//! assert_eq!(outcome.status(), Some(401));
//! # Ok(()) }
//! ```
//!
//! Design: all host state of a VM lives in its `Store` ([`state`] is private); a [`Host`] is
//! compiled once and instantiated per VM; an [`Envoy`] is a main-thread VM plus worker VMs that
//! share one fake [`Clock`], shared data, shared queues and stats. Guest memory is treated as
//! hostile (bounds-checked, size caps in [`Limits`], fuel per call).

mod abi;
mod clock;
mod envoy;
mod error;
mod foreign;
mod host;
mod http;
mod http_calls;
mod limits;
mod logs;
mod metrics;
mod properties;
pub mod scenario;
mod shared_data;
mod shared_queue;
mod state;
mod stream;
mod vm;

pub use abi::{HOSTCALLS, LogLevel, MetricType, Status};
pub use clock::{Clock, DEFAULT_START_UNIX_SECONDS};
pub use envoy::{Envoy, EnvoyOptions};
pub use error::{HostError, Result};
pub use foreign::{
    ForeignFunction, ForeignFunctions, VerifySignatureArguments, VerifySignatureResult,
    verify_signature,
};
pub use host::{FILTER_WASM_ENV, Host, filter_wasm_path};
pub use http::{Headers, LocalReply, Outcome, Reply, Request, Response, StreamId, Upstream};
pub use http_calls::{CallAnswer, CallId, HttpCall};
pub use limits::Limits;
pub use logs::{LogEntry, LogSource};
pub use metrics::MetricValue;
pub use scenario::{Scenario, ScenarioReport};
pub use vm::{FuelReport, StartReport, Vm};

/// Raw wasm values, for [`Vm::call_export`].
pub use wasmtime::Val;
