//! `[[federation.ssf_streams]]`: the Shared Signals (SSF 1.0) transmitters the hub receives
//! Security Event Tokens from, one stream each, and what their events do. Validated once at start.
//!
//! ```toml
//! [[federation.ssf_streams]]
//! name = "okta"                                   # push path /ssf/push/okta, metric label
//! transmitter = "https://example.okta.com"        # its issuer, exactly as the SETs write `iss`
//! audience = "https://hub.example/ssf"            # the `aud` its SETs must carry
//! issuers = ["https://example.okta.com"]          # [[federation.issuers]] the cut-offs apply to
//! delivery = "poll"                               # or "push"
//! auth = { client_credentials = { token_endpoint = "…", client_id = "…", client_secret = "…",
//!          scopes = ["okta.ssf.read"] } }         # or auth = { bearer = "…" }
//! ```

use crate::settings::{RedactedString, SettingsError, err};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The events the receiver acts on, by short name, and their full type URIs.
pub const KNOWN_EVENTS: [(&str, &str); 9] = [
    (
        "session-revoked",
        "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
    ),
    (
        "token-claims-change",
        "https://schemas.openid.net/secevent/caep/event-type/token-claims-change",
    ),
    (
        "credential-change",
        "https://schemas.openid.net/secevent/caep/event-type/credential-change",
    ),
    (
        "account-disabled",
        "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
    ),
    (
        "account-purged",
        "https://schemas.openid.net/secevent/risc/event-type/account-purged",
    ),
    (
        "credential-compromise",
        "https://schemas.openid.net/secevent/risc/event-type/credential-compromise",
    ),
    (
        "sessions-revoked",
        "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked",
    ),
    (
        "token-revoked",
        "https://schemas.openid.net/secevent/oauth/event-type/token-revoked",
    ),
    (
        "tokens-revoked",
        "https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked",
    ),
];

pub const DEFAULT_SET_MAX_AGE_SECONDS: u64 = 86_400;
pub const DEFAULT_SET_LEEWAY_SECONDS: u64 = 30;
pub const DEFAULT_POLL_INTERVAL_SECONDS: u64 = 5;
pub const DEFAULT_MAX_EVENTS: u64 = 100;
pub const DEFAULT_LONG_POLL_SECONDS: u64 = 30;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsfStream {
    pub name: String,
    pub transmitter: String,
    /// Default `{transmitter}/.well-known/ssf-configuration` (SSF 1.0 §7.2.1, a path in the
    /// issuer goes after the well-known part).
    pub configuration_url: Option<String>,
    pub audience: String,
    pub issuers: Vec<String>,
    pub delivery: String,
    /// `long` (default) or `return_immediately` (paced by `poll_interval_seconds`).
    pub poll_mode: Option<String>,
    pub poll_interval_seconds: Option<u64>,
    /// How long the hub's HTTP client waits for a long-poll answer (default 30 s).
    pub long_poll_seconds: Option<u64>,
    pub max_events: Option<u64>,
    /// Push: this endpoint's public URL, given to the transmitter as `endpoint_url`.
    pub push_url: Option<String>,
    /// Push: the `Authorization` header value the transmitter must send (given to it as
    /// `authorization_header`).
    pub push_authorization: Option<String>,
    pub auth: RawStreamAuth,
    /// Event short names → `cutoff` or `ignore` (the defaults: every known event `cutoff`).
    #[serde(default)]
    pub actions: BTreeMap<String, String>,
    /// An `email` subject is taken as the tokens' `sub` (only right where the provider's tokens
    /// carry the email as `sub`); default false: acknowledged, counted, not applied.
    #[serde(default)]
    pub email_is_sub: bool,
    pub set_max_age_seconds: Option<u64>,
    pub leeway_seconds: Option<u64>,
    /// Ask for a verification event once the stream is set up (default true).
    pub verify: Option<bool>,
    /// The longest a request to the transmitter may take (a long poll: this plus
    /// `long_poll_seconds`); default 10 s, 1..=60.
    pub request_timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStreamAuth {
    pub bearer: Option<String>,
    pub client_credentials: Option<RawClientCredentials>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientCredentials {
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    Long,
    ReturnImmediately,
}

#[derive(Debug, Clone)]
pub enum Delivery {
    Poll {
        mode: PollMode,
        interval_seconds: u64,
        long_poll_seconds: u64,
        max_events: u64,
    },
    Push {
        url: String,
        authorization: RedactedString,
    },
}

#[derive(Debug, Clone)]
pub enum StreamAuth {
    Bearer(RedactedString),
    ClientCredentials {
        token_endpoint: String,
        client_id: String,
        client_secret: RedactedString,
        scopes: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    /// Session → `sid` cut-off, user → subject cut-off, token (`jwt_id`) → that `jti` refused.
    Cutoff,
    /// Acknowledged and counted, nothing applied.
    Ignore,
}

#[derive(Debug, Clone)]
pub struct SsfStream {
    pub name: String,
    pub transmitter: String,
    pub configuration_url: String,
    pub audience: String,
    pub issuers: Vec<String>,
    pub delivery: Delivery,
    pub auth: StreamAuth,
    /// Per known event type URI.
    pub actions: BTreeMap<&'static str, EventAction>,
    pub email_is_sub: bool,
    pub set_max_age_seconds: u64,
    pub leeway_seconds: u64,
    pub verify: bool,
    pub request_timeout_seconds: u64,
}

impl SsfStream {
    /// What an event type does (`None`: not an event this receiver knows).
    pub fn action(&self, event_type: &str) -> Option<EventAction> {
        self.actions.get(event_type).copied()
    }
}

impl PartialEq for SsfStream {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for SsfStream {}

/// `{issuer}/.well-known/ssf-configuration`, the path of an issuer with one after it.
pub fn default_configuration_url(issuer: &str) -> Option<String> {
    let url = url::Url::parse(issuer).ok()?;
    let path = url.path().trim_end_matches('/');
    let mut out = url.clone();
    out.set_path(&format!("/.well-known/ssf-configuration{path}"));
    Some(out.to_string())
}

fn check_url(field: &str, text: &str) -> Result<(), SettingsError> {
    let parsed = url::Url::parse(text).map_err(|_| err(field, format!("{text:?} is not a URL")))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.fragment().is_some()
    {
        return Err(err(
            field,
            "must be an http or https URL without a fragment",
        ));
    }
    Ok(())
}

impl RawSsfStream {
    /// `federated`: the issuers of `[[federation.issuers]]`.
    pub fn validate(self, at: &str, federated: &[String]) -> Result<SsfStream, SettingsError> {
        let f = |name: &str| format!("{at}.{name}");
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err(f("name"), "must be 1 to 64 letters, digits, - or _"));
        }
        check_url(&f("transmitter"), &self.transmitter)?;
        let configuration_url = match self.configuration_url {
            Some(u) => {
                check_url(&f("configuration_url"), &u)?;
                u
            }
            None => default_configuration_url(&self.transmitter)
                .ok_or_else(|| err(f("transmitter"), "is not a URL"))?,
        };
        if self.audience.is_empty() {
            return Err(err(f("audience"), "must name the audience of the SETs"));
        }
        if self.issuers.is_empty() {
            return Err(err(f("issuers"), "must name at least one federated issuer"));
        }
        for (j, iss) in self.issuers.iter().enumerate() {
            if !federated.contains(iss) {
                return Err(err(
                    format!("{at}.issuers[{j}]"),
                    format!("{iss:?} is not in [[federation.issuers]]"),
                ));
            }
        }
        let delivery = match self.delivery.as_str() {
            "poll" => {
                if self.push_url.is_some() || self.push_authorization.is_some() {
                    return Err(err(
                        f("push_url"),
                        "push_url and push_authorization are for delivery = \"push\"",
                    ));
                }
                let mode = match self.poll_mode.as_deref() {
                    None | Some("long") => PollMode::Long,
                    Some("return_immediately") => PollMode::ReturnImmediately,
                    Some(other) => {
                        return Err(err(
                            f("poll_mode"),
                            format!("{other:?} is not long or return_immediately"),
                        ));
                    }
                };
                let interval_seconds = self
                    .poll_interval_seconds
                    .unwrap_or(DEFAULT_POLL_INTERVAL_SECONDS);
                if !(1..=3600).contains(&interval_seconds) {
                    return Err(err(
                        f("poll_interval_seconds"),
                        "must be between 1 and 3600",
                    ));
                }
                let long_poll_seconds = self.long_poll_seconds.unwrap_or(DEFAULT_LONG_POLL_SECONDS);
                if !(1..=300).contains(&long_poll_seconds) {
                    return Err(err(f("long_poll_seconds"), "must be between 1 and 300"));
                }
                let max_events = self.max_events.unwrap_or(DEFAULT_MAX_EVENTS);
                if !(1..=1000).contains(&max_events) {
                    return Err(err(f("max_events"), "must be between 1 and 1000"));
                }
                Delivery::Poll {
                    mode,
                    interval_seconds,
                    long_poll_seconds,
                    max_events,
                }
            }
            "push" => {
                if self.poll_mode.is_some()
                    || self.poll_interval_seconds.is_some()
                    || self.max_events.is_some()
                    || self.long_poll_seconds.is_some()
                {
                    return Err(err(
                        f("poll_mode"),
                        "the poll settings are for delivery = \"poll\"",
                    ));
                }
                let url = self
                    .push_url
                    .ok_or_else(|| err(f("push_url"), "is required for delivery = \"push\""))?;
                check_url(&f("push_url"), &url)?;
                let authorization = self.push_authorization.ok_or_else(|| {
                    err(
                        f("push_authorization"),
                        "is required for delivery = \"push\"",
                    )
                })?;
                if authorization.len() < 24 || !authorization.is_ascii() {
                    return Err(err(
                        f("push_authorization"),
                        "must be an ASCII header value of at least 24 characters",
                    ));
                }
                Delivery::Push {
                    url,
                    authorization: RedactedString(authorization),
                }
            }
            other => {
                return Err(err(f("delivery"), format!("{other:?} is not poll or push")));
            }
        };
        let auth = match (self.auth.bearer, self.auth.client_credentials) {
            (Some(b), None) if !b.is_empty() => StreamAuth::Bearer(RedactedString(b)),
            (None, Some(cc)) => {
                check_url(
                    &f("auth.client_credentials.token_endpoint"),
                    &cc.token_endpoint,
                )?;
                if cc.client_id.is_empty() || cc.client_secret.is_empty() {
                    return Err(err(
                        f("auth.client_credentials"),
                        "client_id and client_secret are required",
                    ));
                }
                StreamAuth::ClientCredentials {
                    token_endpoint: cc.token_endpoint,
                    client_id: cc.client_id,
                    client_secret: RedactedString(cc.client_secret),
                    scopes: cc.scopes,
                }
            }
            _ => {
                return Err(err(
                    f("auth"),
                    "give exactly one of bearer and client_credentials",
                ));
            }
        };
        let mut actions: BTreeMap<&'static str, EventAction> = KNOWN_EVENTS
            .iter()
            .map(|(_, uri)| (*uri, EventAction::Cutoff))
            .collect();
        for (name, action) in &self.actions {
            let uri = KNOWN_EVENTS
                .iter()
                .find(|(short, _)| short == name)
                .map(|(_, uri)| *uri)
                .ok_or_else(|| {
                    err(
                        format!("{at}.actions.{name}"),
                        "is not an event the receiver knows",
                    )
                })?;
            let action = match action.as_str() {
                "cutoff" => EventAction::Cutoff,
                "ignore" => EventAction::Ignore,
                other => {
                    return Err(err(
                        format!("{at}.actions.{name}"),
                        format!("{other:?} is not cutoff or ignore"),
                    ));
                }
            };
            actions.insert(uri, action);
        }
        let set_max_age_seconds = self
            .set_max_age_seconds
            .unwrap_or(DEFAULT_SET_MAX_AGE_SECONDS);
        if !(60..=7 * 86_400).contains(&set_max_age_seconds) {
            return Err(err(
                f("set_max_age_seconds"),
                "must be between 60 and 604800",
            ));
        }
        let leeway_seconds = self.leeway_seconds.unwrap_or(DEFAULT_SET_LEEWAY_SECONDS);
        if leeway_seconds > 300 {
            return Err(err(f("leeway_seconds"), "must be at most 300"));
        }
        let request_timeout_seconds = self.request_timeout_seconds.unwrap_or(10);
        if !(1..=60).contains(&request_timeout_seconds) {
            return Err(err(
                f("request_timeout_seconds"),
                "must be between 1 and 60",
            ));
        }
        Ok(SsfStream {
            name: self.name,
            transmitter: self.transmitter,
            configuration_url,
            audience: self.audience,
            issuers: self.issuers,
            delivery,
            auth,
            actions,
            email_is_sub: self.email_is_sub,
            set_max_age_seconds,
            leeway_seconds,
            verify: self.verify.unwrap_or(true),
            request_timeout_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RawSettings;

    fn load(stream: &str) -> Result<crate::settings::Settings, String> {
        let toml = format!(
            r#"
[[federation.issuers]]
issuer = "https://op"
jwks_uri = "https://op/jwks"
max_token_lifetime_seconds = 600
[[federation.ssf_streams]]
name = "s"
transmitter = "https://tx"
audience = "https://hub"
issuers = ["https://op"]
{stream}
"#
        );
        RawSettings::from_toml(&toml)
            .map_err(|e| e.to_string())?
            .validate(&Default::default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn streams_load_with_their_defaults_and_bad_ones_name_the_field() {
        let ok = load("delivery = \"poll\"\nauth = { bearer = \"b\" }").unwrap();
        let s = &ok.federation.ssf_streams[0];
        assert_eq!(
            s.configuration_url,
            "https://tx/.well-known/ssf-configuration"
        );
        assert!(matches!(
            s.delivery,
            Delivery::Poll {
                mode: PollMode::Long,
                max_events: 100,
                ..
            }
        ));
        assert_eq!(s.action(KNOWN_EVENTS[0].1), Some(EventAction::Cutoff));
        assert!(format!("{:?}", s.auth).contains("[redacted]"));
        for (bad, field) in [
            (
                "delivery = \"carrier-pigeon\"\nauth = { bearer = \"b\" }",
                "delivery",
            ),
            ("delivery = \"poll\"\nauth = {}", "auth"),
            (
                "delivery = \"poll\"\nauth = { bearer = \"b\" }\npoll_mode = \"sometimes\"",
                "poll_mode",
            ),
            ("delivery = \"push\"\nauth = { bearer = \"b\" }", "push_url"),
            (
                "delivery = \"push\"\npush_url = \"https://hub/ssf/push/s\"\npush_authorization = \"short\"\nauth = { bearer = \"b\" }",
                "push_authorization",
            ),
            (
                "delivery = \"poll\"\nauth = { bearer = \"b\" }\nactions = { session-revoked = \"maybe\" }",
                "actions.session-revoked",
            ),
            (
                "delivery = \"poll\"\nauth = { bearer = \"b\" }\nactions = { made-up = \"ignore\" }",
                "actions.made-up",
            ),
            (
                "delivery = \"poll\"\nauth = { bearer = \"b\" }\nset_max_age_seconds = 5",
                "set_max_age_seconds",
            ),
        ] {
            let e = load(bad).unwrap_err();
            assert!(
                e.contains(&format!("federation.ssf_streams[0].{field}")),
                "{bad}: {e}"
            );
        }
        let raw: RawSsfStream = toml::from_str(
            "name = \"s\"\ntransmitter = \"https://tx\"\naudience = \"a\"\nissuers = [\"https://nope\"]\ndelivery = \"poll\"\nauth = { bearer = \"b\" }",
        )
        .unwrap();
        let e = raw.validate("x", &["https://op".to_owned()]).unwrap_err();
        assert_eq!(e.field, "x.issuers[0]");
        assert!(e.message.contains("not in [[federation.issuers]]"), "{e}");
    }

    #[test]
    fn the_configuration_url_goes_after_the_well_known_part() {
        assert_eq!(
            default_configuration_url("https://op.example"),
            Some("https://op.example/.well-known/ssf-configuration".into())
        );
        assert_eq!(
            default_configuration_url("https://op.example/realms/r1/"),
            Some("https://op.example/.well-known/ssf-configuration/realms/r1".into())
        );
    }
}
