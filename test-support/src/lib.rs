//! Test tokens, key sets and DPoP proofs, shared by the filter's tests, host-test (its tests and its scenario
//! files) and e2e (through host-test's scenarios): one minter, so every suite signs the same way.
//! [`postgres`] is a throwaway PostgreSQL cluster for the IDP and e2e tests.
//!
//! Keys are derived from a one-byte seed (`[seed; 32]` as the private scalar or Ed25519 seed), so
//! every test, runner and scenario file that names a seed gets the same key. Signatures are real
//! (RustCrypto's `p256` and `ed25519-dalek`): each failure mode in a test is one deliberate
//! change to a valid token.
//!
//! ```
//! use serde_json::json;
//! use test_support::{Issuer, access_token_claims};
//!
//! let idp = Issuer::es256(7, "k1");
//! let token = idp.token(&access_token_claims("https://idp.example", "demo-api", 1_800_000_000));
//! assert_eq!(token.split('.').count(), 3);
//! assert_eq!(idp.jwks()["keys"][0]["kid"], json!("k1"));
//! ```

mod claims;
mod dpop;
mod issuer;
pub mod postgres;

pub use claims::{access_token_claims, merge};
pub use dpop::{ath, proof_claims, thumbprint};
pub use issuer::{Issuer, KeyError, b64, jwks};
