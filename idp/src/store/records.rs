//! The records the store keeps and hands back: its own types, independent of the token formats
//! (the JWT claims) and of any backend.

/// An access token as recorded when issued (for introspection and revocation by `jti`).
pub struct IssuedToken<'a> {
    pub jti: &'a str,
    pub client_id: &'a str,
    pub sub: &'a str,
    pub sid: Option<&'a str>,
    /// Space-separated.
    pub scope: &'a str,
    pub issued_at: i64,
    pub exp: i64,
}

/// One revocation feed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub seq: i64,
    /// `jti` or `sid` (this IDP's tokens and sessions), `sid_cutoff` or `sub_cutoff` (a
    /// federated issuer's session or subject, see [`NewCutoff`]).
    pub kind: String,
    pub value: String,
    pub exp: i64,
    /// The issuer of a cut-off (`None` for this IDP's own entries).
    pub iss: Option<String>,
    /// A cut-off's time: that issuer's tokens of `value` issued at or before it are refused.
    pub cutoff: Option<i64>,
}

/// What a cut-off names: one session of the issuer, or every session of one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutoffKey {
    Sid,
    Sub,
}

impl CutoffKey {
    /// The feed entry's kind.
    pub fn kind(self) -> &'static str {
        match self {
            CutoffKey::Sid => "sid_cutoff",
            CutoffKey::Sub => "sub_cutoff",
        }
    }
}

/// A cut-off to record: tokens of `iss` whose `sid` (or `sub`) is `value`, issued at or before
/// `cutoff`, are refused until `exp` (the cut-off plus the issuer's longest token lifetime).
#[derive(Debug, Clone, Copy)]
pub struct NewCutoff<'a> {
    pub iss: &'a str,
    pub key: CutoffKey,
    pub value: &'a str,
    pub cutoff: i64,
    pub exp: i64,
    pub now: i64,
}

pub struct NewSession<'a> {
    pub sid: &'a str,
    pub sub: &'a str,
    pub client_id: &'a str,
    pub sso_id: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

pub struct NewRefreshToken<'a> {
    pub hash: &'a [u8],
    pub family: &'a str,
    pub sid: &'a str,
    pub client_id: &'a str,
    pub sub: &'a str,
    pub scope: &'a str,
    pub now: i64,
    pub expires_at: i64,
    /// The RFC 7638 thumbprint of the DPoP key the token is bound to (public clients, RFC 9449
    /// §5); `None`: not bound.
    pub dpop_jkt: Option<&'a str>,
}

/// A stored refresh token with its session's state.
#[derive(Debug, Clone)]
pub struct StoredRefresh {
    pub family: String,
    pub sid: String,
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub expires_at: i64,
    pub used: bool,
    pub revoked: bool,
    pub session_ended: bool,
    pub session_expires_at: i64,
    /// See [`NewRefreshToken::dpop_jkt`].
    pub dpop_jkt: Option<String>,
}

pub struct NewCode<'a> {
    pub hash: &'a [u8],
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub sub: &'a str,
    pub scope: &'a str,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a str,
    pub sso_id: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
    /// The `dpop_jkt` of the authorization request (RFC 9449 §10): redeeming the code needs a
    /// DPoP proof by that key.
    pub dpop_jkt: Option<&'a str>,
}

/// An authorization code as stored.
#[derive(Debug, Clone)]
pub struct StoredCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub sub: String,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub sso_id: Option<String>,
    pub expires_at: i64,
    /// See [`NewCode::dpop_jkt`].
    pub dpop_jkt: Option<String>,
}

/// What presenting a code found.
#[derive(Debug)]
pub enum CodeUse {
    /// The first use: the code is now marked used (in the transaction).
    First(Box<StoredCode>),
    /// The code was used before; `sid` is the session its tokens went to, if any were issued.
    Replayed {
        sid: Option<String>,
    },
    Unknown,
}

pub struct NewSsoSession<'a> {
    /// Hex SHA-256 of the cookie value.
    pub id: &'a str,
    pub sub: &'a str,
    pub auth_time: i64,
    /// Space-separated (RFC 8176 values).
    pub amr: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// A live single-sign-on session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoRecord {
    pub sub: String,
    pub auth_time: i64,
    /// Space-separated (RFC 8176 values).
    pub amr: String,
}

pub struct FormToken<'a> {
    /// Hex SHA-256 of the token.
    pub hash: &'a str,
    /// Hex SHA-256 of the browser's binding cookie.
    pub browser: &'a str,
    /// `login`, `consent` or `logout`.
    pub purpose: &'a str,
    pub expires_at: i64,
}

pub struct NewKey<'a> {
    pub kid: &'a str,
    pub alg: &'a str,
    /// The private key as the key module stores it (sealed; opaque to the store).
    pub private_key: &'a [u8],
    pub public_jwk: &'a str,
    /// `active` or `published`.
    pub state: &'a str,
    /// For a published key: when it starts signing.
    pub activate_at: Option<i64>,
    pub now: i64,
}

/// A signing key as stored.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    /// As stored by [`NewKey::private_key`].
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub active: bool,
    /// Published with nothing scheduled (see [`Transaction::usable_key`]).
    pub standing: bool,
}

/// A client address's password-login failures (the domain's `oauth::lockout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressFailures {
    pub failures: i64,
    pub window_start: i64,
    pub locked_until: i64,
    /// When the record may be dropped (it decides nothing after that).
    pub forget_at: i64,
}

/// A user's password-login failures (the domain's `oauth::lockout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserFailures {
    pub failures: i64,
    pub last_failure: i64,
    /// When the record may be dropped (it decides nothing after that).
    pub forget_at: i64,
}

/// The login budgets one attempt touches: the user's and, when known, the client address's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFailures {
    pub user: Option<UserFailures>,
    pub address: Option<AddressFailures>,
}
