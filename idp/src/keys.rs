//! Signing keys: generated on first start (ES256 by default; RS256 or EdDSA by configuration)
//! and stored in the database as PKCS#8 sealed with the key-encryption key
//! ([`crate::key_encryption`]); a restart reuses them. The JWKS publishes every key
//! that is not retired. Keys are made by aws-lc-rs, the backend jsonwebtoken signs with here.

use crate::key_encryption::{self, Kek};
use crate::store::{NewKey, Store, Transaction};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rand::RngCore;
use serde_json::{Value, json};

/// The algorithms the IDP signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlg {
    #[default]
    Es256,
    Rs256,
    EdDsa,
}

impl SigningAlg {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(SigningAlg::Es256),
            "RS256" => Some(SigningAlg::Rs256),
            "EdDSA" => Some(SigningAlg::EdDsa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    pub fn jwt(self) -> Algorithm {
        match self {
            SigningAlg::Es256 => Algorithm::ES256,
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::EdDsa => Algorithm::EdDSA,
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

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random_kid() -> String {
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    b64(&bytes)
}

/// A new key: (kid, PKCS#8 DER, public JWK).
fn new_key(alg: SigningAlg) -> Result<(String, Vec<u8>, Value), String> {
    let kid = random_kid();
    let failed = |_| format!("generating a {} key failed", alg.as_str());
    let (der, mut jwk) = match alg {
        SigningAlg::Es256 => {
            let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?;
            let point = key.public_key().as_ref();
            // uncompressed SEC1: 0x04 || x (32) || y (32)
            let (x, y) = match point {
                [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                _ => return Err("unexpected P-256 public key encoding".into()),
            };
            let der = key.to_pkcs8v1().map_err(failed)?;
            (
                der.as_ref().to_vec(),
                json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}),
            )
        }
        SigningAlg::Rs256 => {
            let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(failed)?;
            let public = key.public_key();
            let jwk = json!({
                "kty": "RSA",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            });
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).map_err(failed)?;
            (der.as_ref().to_vec(), jwk)
        }
        SigningAlg::EdDsa => {
            let key = Ed25519KeyPair::generate().map_err(failed)?;
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key().as_ref())});
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).map_err(failed)?;
            (der.as_ref().to_vec(), jwk)
        }
    };
    jwk["alg"] = alg.as_str().into();
    jwk["use"] = "sig".into();
    jwk["kid"] = kid.clone().into();
    Ok((kid, der, jwk))
}

/// The signing key for jsonwebtoken from stored PKCS#8 (RSA wants the inner PKCS#1 key).
fn encoding_key(alg: SigningAlg, pkcs8: &[u8]) -> Result<EncodingKey, String> {
    Ok(match alg {
        SigningAlg::Es256 => EncodingKey::from_ec_der(pkcs8),
        SigningAlg::EdDsa => EncodingKey::from_ed_der(pkcs8),
        SigningAlg::Rs256 => {
            let info = pkcs8::PrivateKeyInfo::try_from(pkcs8)
                .map_err(|e| format!("stored RSA key: {e}"))?;
            EncodingKey::from_rsa_der(info.private_key)
        }
    })
}

fn decoding_key(alg: SigningAlg, jwk: &Value) -> Result<DecodingKey, String> {
    let field = |name: &str| {
        jwk[name]
            .as_str()
            .ok_or_else(|| format!("stored JWK lacks {name}"))
    };
    match alg {
        SigningAlg::Es256 => DecodingKey::from_ec_components(field("x")?, field("y")?),
        SigningAlg::Rs256 => DecodingKey::from_rsa_components(field("n")?, field("e")?),
        SigningAlg::EdDsa => DecodingKey::from_ed_components(field("x")?),
    }
    .map_err(|e| e.to_string())
}

async fn insert_key(
    tx: &mut dyn Transaction,
    kek: &Kek,
    alg: SigningAlg,
    state: &str,
    activate_at: Option<i64>,
    now: i64,
) -> Result<String, String> {
    let (kid, der, jwk) = new_key(alg)?;
    let sealed = kek.seal(&kid, &der).map_err(|e| e.to_string())?;
    tx.insert_key(&NewKey {
        kid: &kid,
        alg: alg.as_str(),
        private_key: &sealed,
        public_jwk: &jwk.to_string(),
        state,
        activate_at,
        now,
    })
    .await
    .map_err(|e| e.to_string())?;
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
) -> Result<String, String> {
    let e = |e: crate::store::StoreError| e.to_string();
    let mut tx = store.begin().await.map_err(e)?;
    let kid = insert_key(
        &mut *tx,
        kek,
        alg,
        "published",
        Some(now + publish_seconds),
        now,
    )
    .await?;
    tx.commit().await.map_err(e)?;
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

pub async fn advance(
    store: &dyn Store,
    kek: &Kek,
    policy: KeyPolicy,
    now: i64,
) -> Result<(), String> {
    let KeyPolicy {
        alg,
        rs256_id_tokens,
        retire_after,
    } = policy;
    let e = |e: crate::store::StoreError| e.to_string();
    let mut tx = store.begin().await.map_err(e)?;
    if tx.active_key().await.map_err(e)?.is_none() {
        let kid = insert_key(&mut *tx, kek, alg, "active", None, now).await?;
        tracing::info!(%kid, alg = alg.as_str(), "generated a new signing key");
    }
    let rs256 = SigningAlg::Rs256.as_str();
    if rs256_id_tokens && tx.usable_key(rs256).await.map_err(e)?.is_none() {
        let kid = insert_key(&mut *tx, kek, SigningAlg::Rs256, "published", None, now).await?;
        tracing::info!(%kid, "generated a standing RS256 key for RS256 ID tokens");
    }
    if let Some(kid) = tx.key_due(now).await.map_err(e)? {
        tx.activate_key(&kid, now + retire_after).await.map_err(e)?;
        tracing::info!(%kid, "signing key rotated");
    }
    tx.retire_keys(now).await.map_err(e)?;
    tx.commit().await.map_err(e)
}

/// Loads the key ring, generating and storing the first key when there is none.
pub async fn load_or_create(
    store: &dyn Store,
    kek: &Kek,
    policy: KeyPolicy,
    now: i64,
) -> Result<KeyRing, String> {
    seal_plaintext_keys(store, kek).await?;
    advance(store, kek, policy, now).await?;
    load(store, kek).await
}

/// The migration to encryption at rest: seals every private key still stored as plaintext
/// PKCS#8 (a database written by an older version), retired keys included. Idempotent.
pub async fn seal_plaintext_keys(store: &dyn Store, kek: &Kek) -> Result<usize, String> {
    let e = |e: crate::store::StoreError| e.to_string();
    let mut tx = store.begin().await.map_err(e)?;
    let mut sealed = 0;
    for (kid, stored) in tx.private_keys().await.map_err(e)? {
        if key_encryption::is_sealed(&stored) {
            continue;
        }
        let new = kek.seal(&kid, &stored).map_err(|e| e.to_string())?;
        tx.set_private_key(&kid, &new).await.map_err(e)?;
        sealed += 1;
    }
    tx.commit().await.map_err(e)?;
    if sealed > 0 {
        tracing::info!(keys = sealed, "encrypted plaintext signing keys at rest");
    }
    Ok(sealed)
}

/// The current key ring: the active key signs; every key not retired is published.
pub async fn load(store: &dyn Store, kek: &Kek) -> Result<KeyRing, String> {
    let rows = store.signing_keys().await.map_err(|e| e.to_string())?;
    let mut active = None;
    let mut rs256 = None;
    let mut verifying = Vec::new();
    let mut published = Vec::new();
    for row in rows {
        let kid = row.kid;
        let alg = SigningAlg::parse(&row.alg)
            .ok_or_else(|| format!("key {kid}: unknown algorithm {:?}", row.alg))?;
        let jwk: Value =
            serde_json::from_str(&row.public_jwk).map_err(|e| format!("key {kid}: {e}"))?;
        let decoding = decoding_key(alg, &jwk).map_err(|e| format!("key {kid}: {e}"))?;
        if row.active {
            let der = kek
                .open(&kid, &row.private_key)
                .map_err(|e| e.to_string())?;
            let encoding = encoding_key(alg, &der).map_err(|e| format!("key {kid}: {e}"))?;
            active = Some((kid.clone(), alg, encoding));
        } else if row.standing && alg == SigningAlg::Rs256 {
            // the newest standing key wins (rows come oldest first)
            let der = kek
                .open(&kid, &row.private_key)
                .map_err(|e| e.to_string())?;
            let encoding = encoding_key(alg, &der).map_err(|e| format!("key {kid}: {e}"))?;
            rs256 = Some(Signer {
                kid: kid.clone(),
                alg,
                encoding,
            });
        }
        verifying.push(PublicKey { kid, alg, decoding });
        published.push(jwk);
    }
    let (active_kid, active_alg, encoding) = active.ok_or("no active signing key")?;
    Ok(KeyRing {
        active_kid,
        active_alg,
        encoding,
        rs256,
        verifying,
        jwks: json!({ "keys": published }),
    })
}
