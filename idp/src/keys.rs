//! Signing keys: generated on first start (ES256 by default; RS256 or EdDSA by configuration)
//! and stored as PKCS#8 in the database; a restart reuses them. The JWKS publishes every key
//! that is not retired. Keys are made by aws-lc-rs, the backend jsonwebtoken signs with here.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rand::RngCore;
use serde_json::{Value, json};
use sqlx::{Row, SqlitePool};

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

/// The key tokens are signed with, plus the public keys to publish and verify with.
pub struct KeyRing {
    pub active_kid: String,
    pub active_alg: SigningAlg,
    pub encoding: EncodingKey,
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
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    alg: SigningAlg,
    state: &str,
    activate_at: Option<i64>,
    now: i64,
) -> Result<String, String> {
    let (kid, der, jwk) = new_key(alg)?;
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_der, public_jwk, state, created_at, activate_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&kid)
    .bind(alg.as_str())
    .bind(der)
    .bind(jwk.to_string())
    .bind(state)
    .bind(now)
    .bind(activate_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| e.to_string())?;
    Ok(kid)
}

/// Starts a rotation: a new `alg` key is published in the JWKS now and signs from
/// `now + publish`, so gateways have fetched it before they see a token signed with it.
pub async fn schedule_rotation(
    pool: &SqlitePool,
    alg: SigningAlg,
    now: i64,
    publish_seconds: i64,
) -> Result<String, String> {
    let mut tx = crate::db::begin_write(pool)
        .await
        .map_err(|e| e.to_string())?;
    let kid = insert_key(&mut tx, alg, "published", Some(now + publish_seconds), now).await?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(kid)
}

/// Moves rotations along: a published key whose time has come starts signing (the previous one
/// stays published until `retire_after` seconds later, when no token it signed is valid any
/// more), and keys past their retirement leave the JWKS. Creates the first key (`alg`) if there
/// is none.
pub async fn advance(
    pool: &SqlitePool,
    alg: SigningAlg,
    now: i64,
    retire_after: i64,
) -> Result<(), String> {
    let e = |e: sqlx::Error| e.to_string();
    let mut tx = crate::db::begin_write(pool).await.map_err(e)?;
    let has_active: Option<String> =
        sqlx::query_scalar("SELECT kid FROM signing_keys WHERE state = 'active' LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(e)?;
    if has_active.is_none() {
        let kid = insert_key(&mut tx, alg, "active", None, now).await?;
        tracing::info!(%kid, alg = alg.as_str(), "generated a new signing key");
    }
    let due: Option<String> = sqlx::query_scalar(
        "SELECT kid FROM signing_keys WHERE state = 'published' AND activate_at IS NOT NULL AND activate_at <= ? ORDER BY activate_at LIMIT 1",
    )
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .map_err(e)?;
    if let Some(kid) = due {
        sqlx::query(
            "UPDATE signing_keys SET state = 'published', retire_at = ? WHERE state = 'active'",
        )
        .bind(now + retire_after)
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        sqlx::query("UPDATE signing_keys SET state = 'active', activate_at = NULL WHERE kid = ?")
            .bind(&kid)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        tracing::info!(%kid, "signing key rotated");
    }
    sqlx::query("UPDATE signing_keys SET state = 'retired' WHERE state = 'published' AND retire_at IS NOT NULL AND retire_at <= ?")
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(e)?;
    tx.commit().await.map_err(e)
}

/// Loads the key ring, generating and storing the first key when there is none.
pub async fn load_or_create(
    pool: &SqlitePool,
    alg: SigningAlg,
    now: i64,
    retire_after: i64,
) -> Result<KeyRing, String> {
    advance(pool, alg, now, retire_after).await?;
    load(pool).await
}

/// The current key ring: the active key signs; every key not retired is published.
pub async fn load(pool: &SqlitePool) -> Result<KeyRing, String> {
    let rows = sqlx::query(
        "SELECT kid, alg, private_der, public_jwk, state FROM signing_keys WHERE state != 'retired' ORDER BY created_at",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| e.to_string())?;
    let mut active = None;
    let mut verifying = Vec::new();
    let mut published = Vec::new();
    for row in rows {
        let kid: String = row.get("kid");
        let alg_text: String = row.get("alg");
        let alg = SigningAlg::parse(&alg_text)
            .ok_or_else(|| format!("key {kid}: unknown algorithm {alg_text:?}"))?;
        let der: Vec<u8> = row.get("private_der");
        let jwk_text: String = row.get("public_jwk");
        let state: String = row.get("state");
        let jwk: Value = serde_json::from_str(&jwk_text).map_err(|e| format!("key {kid}: {e}"))?;
        let decoding = decoding_key(alg, &jwk).map_err(|e| format!("key {kid}: {e}"))?;
        if state == "active" {
            let encoding = encoding_key(alg, &der).map_err(|e| format!("key {kid}: {e}"))?;
            active = Some((kid.clone(), alg, encoding));
        }
        verifying.push(PublicKey { kid, alg, decoding });
        published.push(jwk);
    }
    let (active_kid, active_alg, encoding) = active.ok_or("no active signing key")?;
    Ok(KeyRing {
        active_kid,
        active_alg,
        encoding,
        verifying,
        jwks: json!({ "keys": published }),
    })
}
