//! Configuration: a TOML file, then environment overrides (`IDP_LISTEN`, `IDP_DATABASE`,
//! `IDP_ISSUER`), then command-line flags — validated once into [`Settings`]. Secrets are held in
//! types that print `[redacted]`.

use crate::key_encryption::KekSource;
use crate::keys::SigningAlg;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
pub const DEFAULT_DATABASE: &str = "sqlite://.data/idp.sqlite?mode=rwc";
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:9000";
pub const DEFAULT_ACCESS_TOKEN_TTL: u64 = 300;
pub const MIN_SECRET_LEN: usize = 32;
pub const DEFAULT_AUTHORIZATION_CODE_TTL: u64 = 60;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub issuer: Option<String>,
    pub listen: Option<String>,
    pub database: Option<String>,
    pub access_token_ttl_seconds: Option<u64>,
    pub refresh_token_ttl_seconds: Option<u64>,
    /// How long an authorization code can be redeemed (default 60 s).
    pub authorization_code_ttl_seconds: Option<u64>,
    /// How long a browser stays signed in at the IDP (single sign-on; default 8 hours).
    pub sso_session_ttl_seconds: Option<u64>,
    /// The algorithm of new signing keys: ES256 (default), RS256 or EdDSA.
    pub signing_algorithm: Option<String>,
    #[serde(default)]
    pub clients: Vec<RawClient>,
    #[serde(default)]
    pub users: Vec<RawUser>,
    #[serde(default)]
    pub password_policy: Option<RawPasswordPolicy>,
    /// Proxies whose `X-Forwarded-For` names the real client (see [`Forwarded`]).
    #[serde(default)]
    pub forwarded: Option<RawForwarded>,
    /// A file holding the key that encrypts signing keys at rest (64 hex digits or base64url);
    /// `IDP_KEY_ENCRYPTION_KEY` wins over it. Default: a file generated next to the database.
    pub key_encryption_key_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForwarded {
    /// Addresses or CIDR blocks of the proxies in front of the IDP (e.g. Envoy).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// How many `X-Forwarded-For` entries, counted from the right, trusted proxies appended
    /// (default 1: Envoy with `use_remote_address: true` appends the address it saw).
    pub trusted_hops: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub username: String,
    /// An argon2 PHC string (`idp hash-password`).
    pub password_argon2: String,
    /// The stable subject; default: a UUID derived from the username.
    pub sub: Option<String>,
    /// Shown by userinfo for the `profile` scope.
    pub name: Option<String>,
    /// Shown by userinfo for the `email` scope.
    pub email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPasswordPolicy {
    pub max_failures: Option<u32>,
    pub window_seconds: Option<u64>,
    pub lockout_seconds: Option<u64>,
    pub user_delay_seconds: Option<u64>,
    pub max_user_delay_seconds: Option<u64>,
    pub max_concurrent_hashes: Option<usize>,
}

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

/// Brute-force protection of password logins (see [`crate::lockout`]).
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub id: String,
    pub secret_sha256: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub access_token_ttl_seconds: Option<u64>,
    /// A gateway may revoke any token, read the revocation feed and introspect.
    #[serde(default)]
    pub gateway: bool,
    /// Accept the PKCE `plain` method (confidential clients only; S256 is always accepted).
    #[serde(default)]
    pub allow_pkce_plain: bool,
    /// Require PKCE from this confidential client too (public clients always need it).
    #[serde(default)]
    pub require_pkce: bool,
    /// A first-party client: its users are not asked for consent.
    #[serde(default)]
    pub skip_consent: bool,
    /// Where RP-initiated logout may send the user agent afterwards (exact match).
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// The algorithm of this client's ID tokens (OIDC Registration §2): `RS256` (always
    /// available), or the IDP's `signing_algorithm`. Default: the active key's algorithm.
    pub id_token_signed_response_alg: Option<String>,
}

/// A SHA-256 digest of a client secret (secrets are high-entropy, so a fast hash is right).
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
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {field}: {message}")]
pub struct SettingsError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> SettingsError {
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
}

/// A secret string that prints `[redacted]`.
#[derive(Clone, Default)]
pub struct RedactedString(pub String);

impl fmt::Debug for RedactedString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The key-encryption key's source: the environment, the configured file, else a file generated
/// next to a SQLite database file (an in-memory database gets a key for the process only).
fn key_encryption_source(
    overrides: &Overrides,
    file: Option<String>,
    database: &str,
) -> Result<KekSource, SettingsError> {
    if let Some(value) = &overrides.key_encryption_key {
        crate::key_encryption::Kek::parse(&value.0)
            .map_err(|e| err("IDP_KEY_ENCRYPTION_KEY", e.to_string()))?;
        return Ok(KekSource::Value(value.0.clone()));
    }
    if let Some(path) = file {
        return Ok(KekSource::File(path.into()));
    }
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .unwrap_or(database);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return Ok(KekSource::Ephemeral);
    }
    let dir = std::path::Path::new(path)
        .parent()
        .unwrap_or(std::path::Path::new(""));
    Ok(KekSource::Generated(
        dir.join(crate::key_encryption::GENERATED_FILE_NAME),
    ))
}

impl RawSettings {
    pub fn from_toml(text: &str) -> Result<Self, SettingsError> {
        toml::from_str(text).map_err(|e| err("file", e.to_string()))
    }

    pub fn validate(self, overrides: &Overrides) -> Result<Settings, SettingsError> {
        let pick = |flag: &Option<String>, file: Option<String>, default: &str| {
            flag.clone().or(file).unwrap_or_else(|| default.to_owned())
        };
        let issuer = pick(&overrides.issuer, self.issuer, DEFAULT_ISSUER);
        if !(issuer.starts_with("https://")
            || issuer.starts_with("http://127.")
            || issuer.starts_with("http://localhost"))
            || issuer.ends_with('/')
            || issuer.contains(['?', '#', ' '])
        {
            return Err(err(
                "issuer",
                "must be an https URL (http only for loopback) without a trailing slash, query or fragment",
            ));
        }
        let listen_text = pick(&overrides.listen, self.listen, DEFAULT_LISTEN);
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            err(
                "listen",
                format!("{listen_text:?} is not an IP:port address"),
            )
        })?;
        let database = pick(&overrides.database, self.database, DEFAULT_DATABASE);
        if !database.starts_with("sqlite:") {
            return Err(err("database", "only sqlite: URLs are supported"));
        }
        let default_ttl = self
            .access_token_ttl_seconds
            .unwrap_or(DEFAULT_ACCESS_TOKEN_TTL);
        check_ttl("access_token_ttl_seconds", default_ttl)?;
        let mut clients: Vec<Client> = Vec::with_capacity(self.clients.len());
        for (i, c) in self.clients.into_iter().enumerate() {
            let client = c.validate(&format!("clients[{i}]"), default_ttl)?;
            if clients.iter().any(|o| o.id == client.id) {
                return Err(err(
                    format!("clients[{i}].id"),
                    format!("{:?} is defined twice", client.id),
                ));
            }
            clients.push(client);
        }
        let mut users: Vec<User> = Vec::with_capacity(self.users.len());
        for (i, u) in self.users.into_iter().enumerate() {
            let user = u.validate(&format!("users[{i}]"))?;
            if users
                .iter()
                .any(|o| o.username == user.username || o.sub == user.sub)
            {
                return Err(err(
                    format!("users[{i}]"),
                    "username or sub is defined twice",
                ));
            }
            users.push(user);
        }
        let refresh_token_ttl_seconds = self.refresh_token_ttl_seconds.unwrap_or(8 * 3600);
        if !(60..=30 * 86_400).contains(&refresh_token_ttl_seconds) {
            return Err(err(
                "refresh_token_ttl_seconds",
                "must be between 60 and 2592000",
            ));
        }
        let authorization_code_ttl_seconds = self
            .authorization_code_ttl_seconds
            .unwrap_or(DEFAULT_AUTHORIZATION_CODE_TTL);
        if !(1..=600).contains(&authorization_code_ttl_seconds) {
            return Err(err(
                "authorization_code_ttl_seconds",
                "must be between 1 and 600",
            ));
        }
        let sso_session_ttl_seconds = self.sso_session_ttl_seconds.unwrap_or(8 * 3600);
        if !(60..=30 * 86_400).contains(&sso_session_ttl_seconds) {
            return Err(err(
                "sso_session_ttl_seconds",
                "must be between 60 and 2592000",
            ));
        }
        let signing_algorithm = match self.signing_algorithm.as_deref() {
            None => SigningAlg::default(),
            Some(a) => SigningAlg::parse(a)
                .ok_or_else(|| err("signing_algorithm", "must be ES256, RS256 or EdDSA"))?,
        };
        let password_policy = match self.password_policy {
            None => PasswordPolicy::default(),
            Some(p) => {
                let d = PasswordPolicy::default();
                let policy = PasswordPolicy {
                    max_failures: p.max_failures.unwrap_or(d.max_failures),
                    window_seconds: p.window_seconds.unwrap_or(d.window_seconds),
                    lockout_seconds: p.lockout_seconds.unwrap_or(d.lockout_seconds),
                    user_delay_seconds: p.user_delay_seconds.unwrap_or(d.user_delay_seconds),
                    max_user_delay_seconds: p
                        .max_user_delay_seconds
                        .unwrap_or(d.max_user_delay_seconds),
                    max_concurrent_hashes: p
                        .max_concurrent_hashes
                        .unwrap_or(d.max_concurrent_hashes),
                };
                if !(1..=100).contains(&policy.max_failures) {
                    return Err(err(
                        "password_policy.max_failures",
                        "must be between 1 and 100",
                    ));
                }
                if !(1..=64).contains(&policy.max_concurrent_hashes) {
                    return Err(err(
                        "password_policy.max_concurrent_hashes",
                        "must be between 1 and 64",
                    ));
                }
                if policy.window_seconds == 0 || policy.lockout_seconds == 0 {
                    return Err(err(
                        "password_policy",
                        "window_seconds and lockout_seconds must be positive",
                    ));
                }
                if policy.user_delay_seconds == 0
                    || policy.max_user_delay_seconds < policy.user_delay_seconds
                    || policy.max_user_delay_seconds > 3600
                {
                    return Err(err(
                        "password_policy.max_user_delay_seconds",
                        "need 0 < user_delay_seconds <= max_user_delay_seconds <= 3600",
                    ));
                }
                policy
            }
        };
        for (i, c) in clients.iter().enumerate() {
            if let Some(a) = c.id_token_alg
                && a != SigningAlg::Rs256
                && a != signing_algorithm
            {
                return Err(err(
                    format!("clients[{i}].id_token_signed_response_alg"),
                    "must be RS256 or the signing_algorithm",
                ));
            }
        }
        let key_encryption =
            key_encryption_source(overrides, self.key_encryption_key_file, &database)?;
        let forwarded = match self.forwarded {
            None => Forwarded::default(),
            Some(f) => f.validate()?,
        };
        Ok(Settings {
            issuer,
            listen,
            database,
            clients,
            users,
            refresh_token_ttl_seconds,
            authorization_code_ttl_seconds,
            sso_session_ttl_seconds,
            signing_algorithm,
            password_policy,
            forwarded,
            key_encryption,
        })
    }
}

impl RawForwarded {
    fn validate(self) -> Result<Forwarded, SettingsError> {
        let mut trusted_proxies = Vec::with_capacity(self.trusted_proxies.len());
        for (i, text) in self.trusted_proxies.iter().enumerate() {
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    err(
                        format!("forwarded.trusted_proxies[{i}]"),
                        format!("{text:?} is not an IP address or CIDR block"),
                    )
                })?;
            trusted_proxies.push(net);
        }
        let hops = self.trusted_hops.unwrap_or(1);
        if !(1..=10).contains(&hops) {
            return Err(err("forwarded.trusted_hops", "must be between 1 and 10"));
        }
        Ok(Forwarded {
            trusted_proxies,
            trusted_hops: usize::try_from(hops).unwrap_or(1),
        })
    }
}

fn check_ttl(field: &str, ttl: u64) -> Result<(), SettingsError> {
    if !(1..=86_400).contains(&ttl) {
        return Err(err(field, "must be between 1 and 86400 seconds"));
    }
    Ok(())
}

fn is_token_char(c: char) -> bool {
    // RFC 6749 scope-token / client_id: printable ASCII without space, quote or backslash.
    c.is_ascii_graphic() && c != '"' && c != '\\'
}

impl RawClient {
    fn validate(self, at: &str, default_ttl: u64) -> Result<Client, SettingsError> {
        let f = |name: &str| format!("{at}.{name}");
        if self.id.is_empty() || !self.id.chars().all(is_token_char) || self.id.contains(':') {
            return Err(err(
                f("id"),
                "must be non-empty printable ASCII without spaces, quotes or ':'",
            ));
        }
        let secret = match self.secret_sha256 {
            None => None,
            Some(hex_text) => {
                let bytes = hex::decode(&hex_text)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        err(
                            f("secret_sha256"),
                            "must be 64 hex digits (see `idp hash-secret`)",
                        )
                    })?;
                Some(SecretHash(bytes))
            }
        };
        for (j, s) in self.scopes.iter().enumerate() {
            if s.is_empty() || !s.chars().all(is_token_char) {
                return Err(err(
                    format!("{at}.scopes[{j}]"),
                    "must be a non-empty scope token",
                ));
            }
        }
        let mut grant_types = BTreeSet::new();
        for (j, g) in self.grant_types.iter().enumerate() {
            let grant = GrantType::parse(g).ok_or_else(|| {
                err(
                    format!("{at}.grant_types[{j}]"),
                    format!("unknown grant type {g:?}"),
                )
            })?;
            grant_types.insert(grant);
        }
        if grant_types.contains(&GrantType::ClientCredentials) && secret.is_none() {
            return Err(err(
                f("grant_types"),
                "client_credentials needs a confidential client (secret_sha256)",
            ));
        }
        if grant_types.contains(&GrantType::Password) && secret.is_none() {
            return Err(err(
                f("grant_types"),
                "the password grant is only for confidential clients",
            ));
        }
        if !grant_types.is_empty() && self.audiences.is_empty() {
            return Err(err(
                f("audiences"),
                "a client that gets tokens needs at least one audience",
            ));
        }
        if self.gateway && secret.is_none() {
            return Err(err(
                f("gateway"),
                "a gateway client must be confidential (secret_sha256)",
            ));
        }
        for (j, uri) in self.redirect_uris.iter().enumerate() {
            check_redirect_uri(uri).map_err(|m| err(format!("{at}.redirect_uris[{j}]"), m))?;
        }
        for grant in [GrantType::AuthorizationCode, GrantType::Implicit] {
            if grant_types.contains(&grant) && self.redirect_uris.is_empty() {
                return Err(err(
                    f("redirect_uris"),
                    format!(
                        "the {} grant needs at least one redirect URI",
                        grant.as_str()
                    ),
                ));
            }
        }
        for (j, uri) in self.post_logout_redirect_uris.iter().enumerate() {
            check_redirect_uri(uri)
                .map_err(|m| err(format!("{at}.post_logout_redirect_uris[{j}]"), m))?;
        }
        if self.allow_pkce_plain && secret.is_none() {
            return Err(err(
                f("allow_pkce_plain"),
                "public clients must use PKCE with S256",
            ));
        }
        let ttl = self.access_token_ttl_seconds.unwrap_or(default_ttl);
        check_ttl(&f("access_token_ttl_seconds"), ttl)?;
        let id_token_alg = match self.id_token_signed_response_alg.as_deref() {
            None => None,
            Some(a) => Some(SigningAlg::parse(a).ok_or_else(|| {
                err(
                    f("id_token_signed_response_alg"),
                    "must be RS256, ES256 or EdDSA",
                )
            })?),
        };
        let public = secret.is_none();
        Ok(Client {
            id: self.id,
            secret,
            scopes: self.scopes,
            audiences: self.audiences,
            grant_types,
            redirect_uris: self.redirect_uris,
            access_token_ttl_seconds: ttl,
            gateway: self.gateway,
            allow_pkce_plain: self.allow_pkce_plain,
            require_pkce: self.require_pkce || public,
            skip_consent: self.skip_consent,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            id_token_alg,
        })
    }
}

/// A registered redirect URI (RFC 6749 §3.1.2, RFC 9700 §2.1): absolute, no fragment, https or
/// loopback http, or a private-use scheme of a native app (RFC 8252 §7.1, with a dot in it).
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let parsed =
        url::Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URL: {e}"))?;
    if parsed.fragment().is_some() {
        return Err(format!("{uri:?} must not have a fragment"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => Err(format!("{uri:?}: http is allowed for loopback hosts only")),
        },
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(format!(
            "{uri:?}: the scheme must be https, http on loopback, or a reverse-domain private-use scheme"
        )),
    }
}

impl RawUser {
    fn validate(self, at: &str) -> Result<User, SettingsError> {
        if self.username.is_empty() || self.username.chars().any(char::is_control) {
            return Err(err(
                format!("{at}.username"),
                "must be non-empty printable text",
            ));
        }
        if !self.password_argon2.starts_with("$argon2") {
            return Err(err(
                format!("{at}.password_argon2"),
                "must be an argon2 PHC string (see `idp hash-password`)",
            ));
        }
        let sub = match self.sub {
            Some(s) if s.is_empty() || s.starts_with("client:") => {
                return Err(err(
                    format!("{at}.sub"),
                    "must be non-empty and not start with \"client:\"",
                ));
            }
            Some(s) => s,
            None => derived_user_sub(&self.username),
        };
        Ok(User {
            username: self.username,
            password_argon2: self.password_argon2,
            sub,
            name: self.name,
            email: self.email,
        })
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

    /// What the key ring must hold for these settings.
    pub fn key_policy(&self) -> crate::keys::KeyPolicy {
        crate::keys::KeyPolicy {
            alg: self.signing_algorithm,
            rs256_id_tokens: self
                .clients
                .iter()
                .any(|c| c.id_token_alg == Some(SigningAlg::Rs256)),
            retire_after: self.key_retire_after_seconds(),
        }
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
            database: None,
            key_encryption_key: None,
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
