//! JOSE, the formats under every token: algorithms ([`algorithm`]), compact JWS
//! ([`jws`], [`jose_header`], strict JSON [`strict_json`]), JSON Web Keys ([`jwk`], [`der`],
//! [`key_store`]) and signature verification ([`signature`]). No policy lives here.

pub mod algorithm;
pub mod der;
pub mod jose_header;
pub mod jwk;
pub mod jws;
pub mod key_store;
pub mod signature;
pub mod strict_json;
