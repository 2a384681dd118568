//! The browser side over HTTP, with a cookie jar: login, consent, the SSO session, prompt and
//! max_age, the implicit flow, ID tokens, userinfo, RP-initiated logout, and what must be
//! refused (CSRF, replayed forms, untrusted redirects). The same flows run in a real browser in
//! e2e/browser.
//! `sign_in`: login, consent, SSO, CSRF, redirects, implicit; `sessions`: logout and sessions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[path = "../common/mod.rs"]
mod common;
mod sessions;
mod sign_in;
mod support;
