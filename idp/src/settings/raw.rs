//! The configuration file as written (serde, unknown keys refused) and its validation into
//! [`Settings`].

use super::dpop::RawDpop;
use super::events::{RawBackchannelLogout, RawSsf, check_push_url};
use super::federation::{RawFederation, check_clients};
use super::http_limits::{RawHttpLimits, http_limits};
use super::key_source::key_encryption_source;
use super::password_policy::RawPasswordPolicy;
use super::redirect_uri::check_redirect_uri;
use super::{
    Client, DEFAULT_ACCESS_TOKEN_TTL, DEFAULT_AUTHORIZATION_CODE_TTL, DEFAULT_DATABASE,
    DEFAULT_ISSUER, DEFAULT_LISTEN, Forwarded, GrantType, Overrides, PasswordPolicy, SecretHash,
    Settings, SettingsError, SigningAlg, User, derived_user_sub, err,
};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;

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
    /// DPoP proofs (RFC 9449): proof age, server nonce.
    #[serde(default)]
    pub dpop: Option<RawDpop>,
    /// Request size limits.
    #[serde(default)]
    pub http: Option<RawHttpLimits>,
    /// Upstream issuers federated as a revocation hub.
    #[serde(default)]
    pub federation: Option<RawFederation>,
    /// The Shared Signals transmitter.
    #[serde(default)]
    pub ssf: Option<RawSsf>,
    /// The back-channel logout sender.
    #[serde(default)]
    pub backchannel_logout: Option<RawBackchannelLogout>,
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
    /// A DPoP proof is required on every token request (RFC 9449 §5.2).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// This client's DPoP proofs need a server nonce (RFC 9449 §8).
    #[serde(default)]
    pub dpop_require_nonce: bool,
    /// A gateway's: the federated issuers it may report cut-offs for.
    #[serde(default)]
    pub federated_issuers: Vec<String>,
    /// Where the IDP posts logout tokens when a session of this client ends (OIDC Back-Channel
    /// Logout 1.0; http only: an https RP is reached through a TLS-originating proxy).
    pub backchannel_logout_uri: Option<String>,
    /// The RP needs `sid` in its logout tokens (ours always carry it).
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
}

/// A SHA-256 digest of a client secret (secrets are high-entropy, so a fast hash is right).
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
        if !(database.starts_with("sqlite:") || super::is_postgres_url(&database)) {
            return Err(err(
                "database",
                "must be a sqlite: or postgres:// (postgresql://) URL",
            ));
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
        let password_policy = self
            .password_policy
            .map_or(Ok(PasswordPolicy::default()), RawPasswordPolicy::validate)?;
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
        let dpop = self
            .dpop
            .map_or(Ok(Default::default()), RawDpop::validate)?;
        let http = http_limits(self.http, overrides)?;
        let federation = self.federation.unwrap_or_default().validate(&issuer)?;
        check_clients(&federation, &clients)?;
        let ssf = self.ssf.unwrap_or_default().validate()?;
        let backchannel_logout = self.backchannel_logout.unwrap_or_default().validate()?;
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
            dpop,
            http,
            federation,
            ssf,
            backchannel_logout,
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
        if self.dpop_bound_access_tokens && grant_types.contains(&GrantType::Implicit) {
            return Err(err(
                f("dpop_bound_access_tokens"),
                "the implicit grant cannot carry a DPoP proof",
            ));
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            check_push_url(uri).map_err(|m| err(f("backchannel_logout_uri"), m))?;
        }
        if self.backchannel_logout_session_required && self.backchannel_logout_uri.is_none() {
            return Err(err(
                f("backchannel_logout_session_required"),
                "needs a backchannel_logout_uri",
            ));
        }
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
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            dpop_require_nonce: self.dpop_require_nonce,
            federated_issuers: self.federated_issuers,
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_logout_session_required: self.backchannel_logout_session_required,
        })
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
