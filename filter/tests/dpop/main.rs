//! DPoP at the gateway (RFC 9449): one named vector per refusal, accepting vectors for each proof
//! algorithm, the replay cache across workers (`proofs`); the scheme rules and the answers
//! (`schemes`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[path = "../common/mod.rs"]
mod common;
mod proofs;
mod schemes;
mod support;
