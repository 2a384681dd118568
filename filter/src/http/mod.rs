//! The HTTP vocabulary every layer shares: a request's path ([`request_path`]), a refusal's
//! status, headers and body ([`denial`]).

pub mod denial;
pub mod request_path;
