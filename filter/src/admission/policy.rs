//! Per-route policy: which requests need a token, and what the token must carry. Rules are matched
//! in order and the first match wins; a request no rule matches needs a valid token (secure default).

use crate::config::{DEFAULT_RULE, PathMatch, Rule};
use crate::http::denial::Denial;
use crate::validation::verified_token::VerifiedToken;
use serde_json::Value;

impl Rule {
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let path_ok = match &self.path {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => path == p,
            PathMatch::Regex(re, prefix) => path.starts_with(prefix.as_str()) && re.is_match(path),
        };
        path_ok && (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
    }

    /// Checks what this rule asks of a verified token (provider, scopes, claim values).
    pub fn authorise(&self, token: &VerifiedToken, provider_name: &str) -> Result<(), Denial> {
        if !self.providers.is_empty() && !self.providers.iter().any(|p| p == provider_name) {
            return Err(Denial::WrongIssuer);
        }
        let missing: Vec<&str> = self
            .scopes
            .iter()
            .filter(|s| !token.scopes.iter().any(|t| t == *s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Denial::InsufficientScope(self.scopes.join(" ")));
        }
        for (name, expected) in &self.claims {
            let ok = match token.claims.get(name) {
                Some(Value::Array(items)) => items.contains(expected),
                Some(v) => v == expected,
                None => false,
            };
            if !ok {
                return Err(Denial::ClaimMismatch(name.clone()));
            }
        }
        Ok(())
    }
}

/// The first rule matching the request, or the default (token required).
pub fn rule_for<'a>(rules: &'a [Rule], method: &str, path: &str) -> &'a Rule {
    rules
        .iter()
        .find(|r| r.matches(method, path))
        .unwrap_or(&DEFAULT_RULE)
}
