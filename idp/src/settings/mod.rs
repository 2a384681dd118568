//! Configuration: a TOML file, then environment overrides (`IDP_LISTEN`, `IDP_DATABASE`,
//! `IDP_ISSUER`, `IDP_MAX_BODY_BYTES`, `IDP_MAX_HEADER_BYTES`, `IDP_MAX_HEADERS`), then
//! command-line flags — validated once into [`Settings`]. Secrets are held in types that print
//! `[redacted]`.

mod dpop;
mod events;
mod federation;
mod http_limits;
mod key_source;
mod password_policy;
mod raw;
mod redirect_uri;
mod signing_alg;

pub use dpop::{DpopPolicy, RawDpop};
pub use events::{
    BackchannelLogout, RawBackchannelLogout, RawRetry, RawSsf, RetryPolicy, Ssf, check_push_url,
};
pub use federation::{Delivery, EventAction, PollMode, SsfStream, StreamAuth};
pub use federation::{FederatedIssuer, Federation, KeysFrom, RawFederatedIssuer, RawFederation};
pub use http_limits::{HttpLimits, RawHttpLimits};
pub use key_source::{GENERATED_FILE_NAME, KekSource, decode_key_text};
pub use password_policy::RawPasswordPolicy;
pub use raw::{RawClient, RawForwarded, RawSettings, RawUser};
pub use signing_alg::SigningAlg;

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
pub const DEFAULT_DATABASE: &str = "sqlite://.data/idp.sqlite?mode=rwc";
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:9000";
pub const DEFAULT_ACCESS_TOKEN_TTL: u64 = 300;
pub const MIN_SECRET_LEN: usize = 32;
pub const DEFAULT_AUTHORIZATION_CODE_TTL: u64 = 60;

#[derive(Clone)]
pub struct User {
    pub username: String,
    pub password_argon2: String,
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("sub", &self.sub)
            .finish_non_exhaustive()
    }
}

/// Whether `database` names a PostgreSQL database (`postgres://` or `postgresql://`), the backend
/// for several replicas (the store layer, below this one, says the same of its own URLs).
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// Brute-force protection of password logins (see the domain's `oauth::lockout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Failures within `window_seconds` that lock a client address out for `lockout_seconds`,
    /// and after which a user's attempts are delayed.
    pub max_failures: u32,
    pub window_seconds: u64,
    pub lockout_seconds: u64,
    /// A user's first delay after `max_failures` failures; it doubles with every further
    /// failure up to `max_user_delay_seconds` (a user is never locked out for longer).
    pub user_delay_seconds: u64,
    pub max_user_delay_seconds: u64,
    /// Concurrent argon2 computations (each takes ~19 MiB and tens of ms).
    pub max_concurrent_hashes: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            max_failures: 5,
            window_seconds: 300,
            lockout_seconds: 300,
            user_delay_seconds: 5,
            max_user_delay_seconds: 60,
            max_concurrent_hashes: 4,
        }
    }
}

/// Which peers are proxies whose `X-Forwarded-For` the IDP believes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Forwarded {
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `X-Forwarded-For` entries (from the right) appended by trusted proxies; at least 1.
    pub trusted_hops: usize,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    Password,
    RefreshToken,
    /// `response_type=token` at the authorization endpoint (never at the token endpoint).
    Implicit,
}

impl GrantType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "client_credentials" => Some(GrantType::ClientCredentials),
            "password" => Some(GrantType::Password),
            "refresh_token" => Some(GrantType::RefreshToken),
            "implicit" => Some(GrantType::Implicit),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::Implicit => "implicit",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: Option<SecretHash>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub grant_types: BTreeSet<GrantType>,
    pub redirect_uris: Vec<String>,
    pub access_token_ttl_seconds: u64,
    pub gateway: bool,
    pub allow_pkce_plain: bool,
    /// PKCE is required for this client's authorization codes (always true for public clients).
    pub require_pkce: bool,
    pub skip_consent: bool,
    pub post_logout_redirect_uris: Vec<String>,
    /// `None`: the active key's algorithm.
    pub id_token_alg: Option<SigningAlg>,
    /// Every token request of this client must carry a DPoP proof (RFC 9449 §5.2); its access
    /// tokens are always DPoP-bound.
    pub dpop_bound_access_tokens: bool,
    /// This client's DPoP proofs must carry a server nonce (RFC 9449 §8), whatever
    /// [`DpopPolicy::require_nonce`] says.
    pub dpop_require_nonce: bool,
    /// The federated issuers this gateway may report cut-offs for (`POST /oauth2/cutoffs`).
    pub federated_issuers: Vec<String>,
    /// Where this client takes back-channel logout tokens (OIDC Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<String>,
    /// Its logout tokens must carry `sid` (they always do for a session of ours).
    pub backchannel_logout_session_required: bool,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret.is_none()
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub listen: SocketAddr,
    pub database: String,
    pub clients: Vec<Client>,
    pub users: Vec<User>,
    pub refresh_token_ttl_seconds: u64,
    pub authorization_code_ttl_seconds: u64,
    pub sso_session_ttl_seconds: u64,
    pub signing_algorithm: SigningAlg,
    pub password_policy: PasswordPolicy,
    pub forwarded: Forwarded,
    /// Where the key that encrypts signing keys at rest comes from.
    pub key_encryption: KekSource,
    /// DPoP proofs (RFC 9449).
    pub dpop: DpopPolicy,
    /// Request size limits.
    pub http: HttpLimits,
    /// Upstream issuers federated as a revocation hub (none: the IDP only serves its own).
    pub federation: Federation,
    /// The Shared Signals transmitter (poll waits, push retries).
    pub ssf: Ssf,
    /// The back-channel logout sender (token lifetime, retries).
    pub backchannel_logout: BackchannelLogout,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {field}: {message}")]
pub struct SettingsError {
    pub field: String,
    pub message: String,
}

pub(crate) fn err(field: impl Into<String>, message: impl Into<String>) -> SettingsError {
    SettingsError {
        field: field.into(),
        message: message.into(),
    }
}

/// Overrides from the environment and the command line (later wins).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database: Option<String>,
    pub issuer: Option<String>,
    /// `IDP_KEY_ENCRYPTION_KEY` (read from the environment only, never a flag).
    pub key_encryption_key: Option<RedactedString>,
    /// `--max-body-bytes` / `IDP_MAX_BODY_BYTES` (`http.max_body_bytes`).
    pub max_body_bytes: Option<u64>,
    /// `--max-header-bytes` / `IDP_MAX_HEADER_BYTES` (`http.max_header_bytes`).
    pub max_header_bytes: Option<u64>,
    /// `--max-headers` / `IDP_MAX_HEADERS` (`http.max_headers`).
    pub max_headers: Option<u64>,
}

/// A secret string that prints `[redacted]`.
#[derive(Clone, Default)]
pub struct RedactedString(pub String);

impl fmt::Debug for RedactedString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A stable UUID-shaped subject for a username (name-based, SHA-256), never of the `client:` form.
pub fn derived_user_sub(username: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("oauth2-gateway user:{username}").as_bytes());
    let h = hex::encode(&d[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Settings {
    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// The longest access-token lifetime of any client: every access token issued before `t`
    /// has expired by `t` plus this.
    pub fn max_access_token_ttl_seconds(&self) -> i64 {
        let max = self
            .clients
            .iter()
            .map(|c| c.access_token_ttl_seconds)
            .max()
            .unwrap_or(DEFAULT_ACCESS_TOKEN_TTL);
        i64::try_from(max).unwrap_or(86_400)
    }

    /// How long a replaced signing key stays published: past the longest access-token lifetime.
    pub fn key_retire_after_seconds(&self) -> i64 {
        self.max_access_token_ttl_seconds() + 60
    }

    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }

    pub fn user_by_sub(&self, sub: &str) -> Option<&User> {
        self.users.iter().find(|u| u.sub == sub)
    }
}

#[cfg(test)]
mod tests {
    use super::key_source::key_encryption_source;
    use super::*;

    const HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn parse(text: &str) -> Result<Settings, SettingsError> {
        RawSettings::from_toml(text)?.validate(&Overrides::default())
    }

    #[test]
    fn defaults_and_overrides() {
        let s = parse("").unwrap();
        assert_eq!(s.issuer, DEFAULT_ISSUER);
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        let o = Overrides {
            listen: Some("127.0.0.1:0".into()),
            issuer: Some("https://idp.example".into()),
            ..Overrides::default()
        };
        let s = RawSettings::from_toml("listen = \"127.0.0.1:1\"")
            .unwrap()
            .validate(&o)
            .unwrap();
        assert_eq!(s.listen.port(), 0);
        assert_eq!(s.issuer, "https://idp.example");
    }

    #[test]
    fn the_key_encryption_key_comes_from_env_file_or_next_to_the_database() {
        let at = |db: &str, file: Option<&str>, env: Option<&str>| {
            let o = Overrides {
                key_encryption_key: env.map(|v| RedactedString(v.into())),
                ..Overrides::default()
            };
            key_encryption_source(&o, file.map(str::to_owned), db)
        };
        let hex = "ab".repeat(32);
        assert_eq!(
            at(DEFAULT_DATABASE, Some("/x"), Some(&hex)).unwrap(),
            KekSource::Value(hex.clone())
        );
        assert_eq!(
            at(DEFAULT_DATABASE, Some("/run/kek"), None).unwrap(),
            KekSource::File("/run/kek".into())
        );
        assert_eq!(
            at(DEFAULT_DATABASE, None, None).unwrap(),
            KekSource::Generated(".data/idp-key-encryption.key".into())
        );
        assert_eq!(
            at("sqlite:///var/lib/idp/db.sqlite?mode=rwc", None, None).unwrap(),
            KekSource::Generated("/var/lib/idp/idp-key-encryption.key".into())
        );
        assert_eq!(
            at("sqlite::memory:", None, None).unwrap(),
            KekSource::Ephemeral
        );
        let e = at(DEFAULT_DATABASE, None, Some("short")).unwrap_err();
        assert_eq!(e.field, "IDP_KEY_ENCRYPTION_KEY");
        assert!(!e.to_string().contains("short"), "the value is not echoed");
        // PostgreSQL: every replica needs the same key, so none is generated
        let pg = "postgres://idp:pw@db:5432/idp";
        assert_eq!(
            at(pg, None, Some(&hex)).unwrap(),
            KekSource::Value(hex.clone())
        );
        assert_eq!(
            at(pg, Some("/run/kek"), None).unwrap(),
            KekSource::File("/run/kek".into())
        );
        assert_eq!(
            at(pg, None, None).unwrap_err().field,
            "key_encryption_key_file"
        );
    }

    #[test]
    fn the_database_is_a_sqlite_or_postgres_url() {
        let with = |db: &str| {
            let o = Overrides {
                database: Some(db.into()),
                key_encryption_key: Some(RedactedString("ab".repeat(32))),
                ..Overrides::default()
            };
            RawSettings::from_toml("").unwrap().validate(&o)
        };
        for ok in [
            "sqlite://x.sqlite?mode=rwc",
            "postgres://idp@127.0.0.1:5432/idp",
            "postgresql://idp@db/idp",
        ] {
            assert_eq!(with(ok).unwrap().database, ok);
        }
        for bad in ["mysql://db/idp", "x.sqlite", "postgres:/db"] {
            assert_eq!(with(bad).unwrap_err().field, "database", "{bad}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("typo = 1", "file"),
            ("issuer = \"http://example.com\"", "issuer"),
            ("listen = \"nowhere\"", "listen"),
            ("[[clients]]\nid = \"a b\"", "clients[0].id"),
            (
                "[[clients]]\nid = \"a\"\nsecret_sha256 = \"zz\"",
                "clients[0].secret_sha256",
            ),
            (
                "[[clients]]\nid = \"a\"\ngrant_types = [\"magic\"]",
                "clients[0].grant_types[0]",
            ),
            (
                "[[clients]]\nid = \"a\"\ngrant_types = [\"client_credentials\"]",
                "clients[0].grant_types",
            ),
            (
                &format!(
                    "[[clients]]\nid = \"a\"\nsecret_sha256 = \"{HASH}\"\naccess_token_ttl_seconds = 0"
                ),
                "clients[0].access_token_ttl_seconds",
            ),
            (
                &format!(
                    "[[clients]]\nid = \"a\"\nsecret_sha256 = \"{HASH}\"\n[[clients]]\nid = \"a\"\nsecret_sha256 = \"{HASH}\""
                ),
                "clients[1].id",
            ),
        ];
        for (text, field) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.field, field, "{text}: {e}");
        }
    }
}
