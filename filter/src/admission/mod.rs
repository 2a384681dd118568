//! Admission: the decision for one request, from its path and headers to "forward with these
//! headers" or "answer with this refusal".

pub mod bearer;
pub mod claim_headers;
pub mod gateway;
pub mod policy;
pub mod token_cache;
pub mod token_sources;
