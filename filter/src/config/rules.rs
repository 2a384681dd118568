//! Per-route rules as configured: how a rule matches a request and what it requires. Matching
//! requests against them is [`crate::admission::policy`].

use super::error::{ConfigError, err, validate_path};
use super::provider::Provider;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A per-route rule: which requests it matches and what it requires of their token.
/// A "bypass" rule cannot require scopes or claims.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("if" = {"required": ["action"], "properties": {"action": {"const": "bypass"}}},
                    "then" = {"properties": {"scopes": {"maxItems": 0}, "claims": {"maxProperties": 0}}}))
)]
pub struct RawRule {
    /// Which requests the rule applies to.
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    /// What the rule requires.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("default" = "require")))]
    pub action: Option<Action>,
    /// Scopes the token must all have (each one scope token, no spaces).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(inner(regex(pattern = super::error::patterns::SCOPE))))]
    pub scopes: Vec<String>,
    /// Claim name → the value the token's claim must have (or contain, for an array claim).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("additionalProperties" = {"type": ["string", "number", "boolean"]})))]
    pub claims: BTreeMap<String, Value>,
    /// Only tokens of these providers (by `name`) are accepted here; empty: any provider.
    /// Each must name a configured provider (checked by the filter).
    #[serde(default)]
    pub providers: Vec<String>,
}

/// How a rule matches a request: exactly one of `prefix`, `exact` or `regex` on the path, and
/// optionally the methods.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("oneOf" = [
        {"required": ["prefix"], "properties": {"prefix": {"type": "string"}, "exact": {"type": "null"}, "regex": {"type": "null"}}},
        {"required": ["exact"], "properties": {"exact": {"type": "string"}, "prefix": {"type": "null"}, "regex": {"type": "null"}}},
        {"required": ["regex"], "properties": {"regex": {"type": "string"}, "prefix": {"type": "null"}, "exact": {"type": "null"}}}
    ]))
)]
pub struct RawMatch {
    /// The path starts with this (starts with `/`, no spaces).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH)))]
    pub prefix: Option<String>,
    /// The path is exactly this (starts with `/`, no spaces).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = super::error::patterns::PATH)))]
    pub exact: Option<String>,
    /// The whole path matches this regular expression (anchored; the `regex-lite` syntax,
    /// checked by the filter).
    #[serde(default)]
    pub regex: Option<String>,
    /// Uppercase HTTP methods; empty: any method.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(inner(regex(pattern = super::error::patterns::METHOD))))]
    pub methods: Vec<String>,
}

/// What a rule requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Action {
    /// A valid token is required (the default).
    Require,
    /// No token is fine; a token that is present must be valid.
    AllowMissing,
    /// No check at all (health checks, CORS preflight). Claim headers are still stripped.
    Bypass,
}

#[derive(Debug, Clone)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    /// The expression, anchored, and a literal prefix every path it matches starts with (checked
    /// first: most paths are told apart without running the expression).
    Regex(regex_lite::Regex, String),
}

/// The text every match of regular expression `r` starts with: its leading literal characters,
/// none when the expression has an alternation anywhere (a branch may start otherwise), and
/// without the last one when a quantifier follows it (`ab?`: only `a` is certain).
pub fn literal_prefix(r: &str) -> String {
    if r.contains('|') {
        return String::new();
    }
    let r = r.strip_prefix('^').unwrap_or(r);
    let mut prefix = String::new();
    for c in r.chars() {
        match c {
            '?' | '*' | '{' => {
                prefix.pop();
                break;
            }
            '\\' | '.' | '+' | '(' | ')' | '[' | ']' | '}' | '^' | '$' => break,
            _ => prefix.push(c),
        }
    }
    prefix
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub path: PathMatch,
    pub methods: Vec<String>,
    pub action: Action,
    pub scopes: Vec<String>,
    pub claims: Vec<(String, Value)>,
    pub providers: Vec<String>,
}

/// The rule applied when none matches.
pub static DEFAULT_RULE: Rule = Rule {
    path: PathMatch::Prefix(String::new()),
    methods: Vec::new(),
    action: Action::Require,
    scopes: Vec::new(),
    claims: Vec::new(),
    providers: Vec::new(),
};

impl RawRule {
    pub fn validate(self, at: &str, providers: &[Provider]) -> Result<Rule, ConfigError> {
        let m = self.matcher;
        let path = match (m.prefix, m.exact, m.regex) {
            (Some(p), None, None) => {
                validate_path(&p).map_err(|e| err(format!("{at}.match.prefix"), e))?;
                PathMatch::Prefix(p)
            }
            (None, Some(p), None) => {
                validate_path(&p).map_err(|e| err(format!("{at}.match.exact"), e))?;
                PathMatch::Exact(p)
            }
            (None, None, Some(r)) => {
                // Anchored so that a regex describes the whole path, as Envoy's safe_regex does.
                let re = regex_lite::Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| err(format!("{at}.match.regex"), e.to_string()))?;
                PathMatch::Regex(re, literal_prefix(&r))
            }
            _ => {
                return Err(err(
                    format!("{at}.match"),
                    "exactly one of prefix, exact or regex is required",
                ));
            }
        };
        let mut methods = Vec::new();
        for (j, method) in m.methods.into_iter().enumerate() {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(err(
                    format!("{at}.match.methods[{j}]"),
                    "must be an uppercase HTTP method",
                ));
            }
            methods.push(method);
        }
        let action = self.action.unwrap_or(Action::Require);
        if action == Action::Bypass && (!self.scopes.is_empty() || !self.claims.is_empty()) {
            return Err(err(at, "a bypass rule cannot require scopes or claims"));
        }
        for (j, s) in self.scopes.iter().enumerate() {
            if s.is_empty() || s.contains(' ') {
                return Err(err(
                    format!("{at}.scopes[{j}]"),
                    "must be one non-empty scope token",
                ));
            }
        }
        for (name, value) in &self.claims {
            if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                return Err(err(
                    format!("{at}.claims.{name}"),
                    "must be a string, number or boolean",
                ));
            }
        }
        for (j, name) in self.providers.iter().enumerate() {
            if !providers.iter().any(|p| &p.name == name) {
                return Err(err(
                    format!("{at}.providers[{j}]"),
                    format!("no provider named {name:?}"),
                ));
            }
        }
        Ok(Rule {
            path,
            methods,
            action,
            scopes: self.scopes,
            claims: self.claims.into_iter().collect(),
            providers: self.providers,
        })
    }
}
