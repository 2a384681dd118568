//! Strict `application/x-www-form-urlencoded` request bodies (RFC 6749 §3.1–3.2): a repeated
//! parameter is an error, an empty one counts as absent.

use crate::error::OAuthError;
use axum::http::{HeaderMap, header};
use std::collections::BTreeMap;

pub struct Form(BTreeMap<String, String>);

impl Form {
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Form, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded".into(),
            ));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::InvalidRequest("the body is not valid form data".into()))?;
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
        Ok(Form(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("parameter {name:?} is missing")))
    }
}
