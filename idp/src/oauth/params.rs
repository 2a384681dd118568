//! The parameters of a token-endpoint-style request (RFC 6749 §3.1–3.2), already decoded: a
//! repeated parameter is an error, an empty one counts as absent. Parsing the HTTP body is
//! the http layer's job.

use crate::oauth::error::OAuthError;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// From decoded name/value pairs, in order.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Params, OAuthError> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if v.is_empty() {
                continue;
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter {k:?} is repeated"
                )));
            }
        }
        Ok(Params(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("parameter {name} is missing")))
    }
}
