//! The ABI itself, probed with a hand-written guest (fixtures/probe.wat): hostile arguments,
//! runaway and trapping guests, stream control, HTTP calls, shared data, queues, metrics,
//! properties, foreign functions, time. `streams`: pointers, traps, stream control, HTTP calls;
//! `state`: shared data, queues, metrics, properties, foreign functions, time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod state;
mod streams;
mod support;
