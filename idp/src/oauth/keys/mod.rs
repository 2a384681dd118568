//! Signing keys: generated on first start (ES256 by default; RS256 or EdDSA by configuration)
//! and stored in the database as PKCS#8 sealed with the key-encryption key
//! ([`crate::oauth::keys::encryption`]); a restart reuses them. The JWKS publishes every key
//! that is not retired. Keys are made by aws-lc-rs, the backend jsonwebtoken signs with here.

pub mod encryption;
mod generate;

use crate::oauth::error::OAuthError;
use crate::settings::Settings;
pub use crate::settings::SigningAlg;
use crate::store::{NewKey, Store, StoreError, Transaction};
use encryption::{Kek, KekError};
use generate::{decoding_key, encoding_key, new_key};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Value, json};

/// Why keys could not be made, stored, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("generating a {0} key failed")]
    Generate(&'static str),
    #[error("stored key {kid}: {message}")]
    Stored { kid: String, message: String },
    #[error("no active signing key")]
    NoActiveKey,
    #[error("no {0} signing key")]
    NoSigner(&'static str),
    #[error("signing: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Kek(#[from] KekError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<KeyError> for OAuthError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(e) => e.into(),
            e => OAuthError::Server(e.to_string()),
        }
    }
}

/// A published key: its id, algorithm and verification key.
pub struct PublicKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub decoding: DecodingKey,
}

/// A private key that signs: its id, algorithm and key.
pub struct Signer {
    pub kid: String,
    pub alg: SigningAlg,
    pub encoding: EncodingKey,
}

/// The key tokens are signed with, plus the public keys to publish and verify with.
pub struct KeyRing {
    pub active_kid: String,
    pub active_alg: SigningAlg,
    pub encoding: EncodingKey,
    /// The standing RS256 key, when the active key is not RS256 and a client asks for RS256 ID
    /// tokens (`id_token_signed_response_alg`).
    pub rs256: Option<Signer>,
    /// Every published key, the active one included.
    pub verifying: Vec<PublicKey>,
    pub jwks: Value,
}

impl KeyRing {
    /// The published key `kid`, if its algorithm is `alg` (a token naming another algorithm for
    /// a key is refused: no algorithm confusion).
    pub fn verifier(&self, kid: &str, alg: Algorithm) -> Option<&DecodingKey> {
        self.verifying
            .iter()
            .find(|k| k.kid == kid && k.alg.jwt() == alg)
            .map(|k| &k.decoding)
    }

    /// The key that signs `alg` tokens: the active key, or the standing RS256 key.
    pub fn signer(&self, alg: SigningAlg) -> Option<(&str, &EncodingKey)> {
        if alg == self.active_alg {
            return Some((&self.active_kid, &self.encoding));
        }
        self.rs256
            .as_ref()
            .filter(|s| s.alg == alg)
            .map(|s| (s.kid.as_str(), &s.encoding))
    }

    /// The algorithms of the published keys (for discovery).
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = self.verifying.iter().map(|k| k.alg.as_str()).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }
}

async fn insert_key(
    tx: &mut dyn Transaction,
    kek: &Kek,
    alg: SigningAlg,
    state: &str,
    activate_at: Option<i64>,
    now: i64,
) -> Result<String, KeyError> {
    let (kid, der, jwk) = new_key(alg)?;
    let sealed = kek.seal(&kid, &der)?;
    tx.insert_key(&NewKey {
        kid: &kid,
        alg: alg.as_str(),
        private_key: &sealed,
        public_jwk: &jwk.to_string(),
        state,
        activate_at,
        now,
    })
    .await?;
    Ok(kid)
}

/// Starts a rotation: a new `alg` key is published in the JWKS now and signs from
/// `now + publish`, so gateways have fetched it before they see a token signed with it.
pub async fn schedule_rotation(
    store: &dyn Store,
    kek: &Kek,
    alg: SigningAlg,
    now: i64,
    publish_seconds: i64,
) -> Result<String, KeyError> {
    let mut tx = store.begin().await?;
    let kid = insert_key(
        &mut *tx,
        kek,
        alg,
        "published",
        Some(now + publish_seconds),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(kid)
}

/// Moves rotations along: a published key whose time has come starts signing (the previous one
/// stays published until `retire_after` seconds later, when no token it signed is valid any
/// more), and keys past their retirement leave the JWKS. Creates the first key (`alg`) if there
/// is none.
/// What the key ring must hold.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// The algorithm of the first key.
    pub alg: SigningAlg,
    /// A client asks for RS256 ID tokens: keep an RS256 key (the active one, or a standing one
    /// beside it).
    pub rs256_id_tokens: bool,
    /// How long a replaced key stays published.
    pub retire_after: i64,
}

impl KeyPolicy {
    /// What the key ring must hold for `settings`.
    pub fn of(settings: &Settings) -> KeyPolicy {
        KeyPolicy {
            alg: settings.signing_algorithm,
            rs256_id_tokens: settings
                .clients
                .iter()
                .any(|c| c.id_token_alg == Some(SigningAlg::Rs256)),
            retire_after: settings.key_retire_after_seconds(),
        }
    }
}

pub async fn advance(
    store: &dyn Store,
    kek: &Kek,
    policy: KeyPolicy,
    now: i64,
) -> Result<(), KeyError> {
    let KeyPolicy {
        alg,
        rs256_id_tokens,
        retire_after,
    } = policy;
    let mut tx = store.begin().await?;
    if tx.active_key().await?.is_none() {
        let kid = insert_key(&mut *tx, kek, alg, "active", None, now).await?;
        tracing::info!(%kid, alg = alg.as_str(), "generated a new signing key");
    }
    let rs256 = SigningAlg::Rs256.as_str();
    if rs256_id_tokens && tx.usable_key(rs256).await?.is_none() {
        let kid = insert_key(&mut *tx, kek, SigningAlg::Rs256, "published", None, now).await?;
        tracing::info!(%kid, "generated a standing RS256 key for RS256 ID tokens");
    }
    if let Some(kid) = tx.key_due(now).await? {
        tx.activate_key(&kid, now + retire_after).await?;
        tracing::info!(%kid, "signing key rotated");
    }
    tx.retire_keys(now).await?;
    Ok(tx.commit().await?)
}

/// Loads the key ring, generating and storing the first key when there is none.
pub async fn load_or_create(
    store: &dyn Store,
    kek: &Kek,
    policy: KeyPolicy,
    now: i64,
) -> Result<KeyRing, KeyError> {
    seal_plaintext_keys(store, kek).await?;
    advance(store, kek, policy, now).await?;
    load(store, kek).await
}

/// The migration to encryption at rest: seals every private key still stored as plaintext
/// PKCS#8 (a database written by an older version), retired keys included. Idempotent.
pub async fn seal_plaintext_keys(store: &dyn Store, kek: &Kek) -> Result<usize, KeyError> {
    let mut tx = store.begin().await?;
    let mut sealed = 0;
    for (kid, stored) in tx.private_keys().await? {
        if encryption::is_sealed(&stored) {
            continue;
        }
        let new = kek.seal(&kid, &stored)?;
        tx.set_private_key(&kid, &new).await?;
        sealed += 1;
    }
    tx.commit().await?;
    if sealed > 0 {
        tracing::info!(keys = sealed, "encrypted plaintext signing keys at rest");
    }
    Ok(sealed)
}

/// The current key ring: the active key signs; every key not retired is published.
pub async fn load(store: &dyn Store, kek: &Kek) -> Result<KeyRing, KeyError> {
    let rows = store.signing_keys().await?;
    let mut active = None;
    let mut rs256 = None;
    let mut verifying = Vec::new();
    let mut published = Vec::new();
    for row in rows {
        let kid = row.kid;
        let stored = |message: String| KeyError::Stored {
            kid: kid.clone(),
            message,
        };
        let alg = SigningAlg::parse(&row.alg)
            .ok_or_else(|| stored(format!("unknown algorithm {:?}", row.alg)))?;
        let jwk: Value =
            serde_json::from_str(&row.public_jwk).map_err(|e| stored(e.to_string()))?;
        let decoding = decoding_key(&kid, alg, &jwk)?;
        if row.active {
            let der = kek.open(&kid, &row.private_key)?;
            let encoding = encoding_key(&kid, alg, &der)?;
            active = Some((kid.clone(), alg, encoding));
        } else if row.standing && alg == SigningAlg::Rs256 {
            // the newest standing key wins (rows come oldest first)
            let der = kek.open(&kid, &row.private_key)?;
            let encoding = encoding_key(&kid, alg, &der)?;
            rs256 = Some(Signer {
                kid: kid.clone(),
                alg,
                encoding,
            });
        }
        verifying.push(PublicKey { kid, alg, decoding });
        published.push(jwk);
    }
    let (active_kid, active_alg, encoding) = active.ok_or(KeyError::NoActiveKey)?;
    Ok(KeyRing {
        active_kid,
        active_alg,
        encoding,
        rs256,
        verifying,
        jwks: json!({ "keys": published }),
    })
}
