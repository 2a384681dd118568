//! Signing keys: an ES256 key generated on first start and stored (PKCS#8) in the database; a
//! restart reuses it. The JWKS publishes every key that is not retired.

use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;
use rand::RngCore;
use serde_json::{Value, json};
use sqlx::{Row, SqlitePool};

pub const ALG: &str = "ES256";

/// The key tokens are signed with, plus the public keys to publish and verify with.
pub struct KeyRing {
    pub active_kid: String,
    pub encoding: EncodingKey,
    /// (kid, decoding key) of every published key, the active one included.
    pub verifying: Vec<(String, DecodingKey)>,
    pub jwks: Value,
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

fn public_jwk(key: &SigningKey, kid: &str) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({
        "kty": "EC", "crv": "P-256", "alg": ALG, "use": "sig", "kid": kid,
        "x": point.x().map(|x| b64(x)), "y": point.y().map(|y| b64(y)),
    })
}

fn new_key() -> Result<(String, Vec<u8>, Value), String> {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| format!("encoding key: {e}"))?;
    let kid = random_kid();
    let jwk = public_jwk(&key, &kid);
    Ok((kid, der.as_bytes().to_vec(), jwk))
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    state: &str,
    activate_at: Option<i64>,
    now: i64,
) -> Result<String, String> {
    let (kid, der, jwk) = new_key()?;
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_der, public_jwk, state, created_at, activate_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&kid)
    .bind(ALG)
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

/// Starts a rotation: a new key is published in the JWKS now and signs from `now + publish`,
/// so gateways have fetched it before they see a token signed with it.
pub async fn schedule_rotation(
    pool: &SqlitePool,
    now: i64,
    publish_seconds: i64,
) -> Result<String, String> {
    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
    let kid = insert_key(&mut tx, "published", Some(now + publish_seconds), now).await?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(kid)
}

/// Moves rotations along: a published key whose time has come starts signing (the previous one
/// stays published until `retire_after` seconds later, when no token it signed is valid any
/// more), and keys past their retirement leave the JWKS. Creates the first key if there is none.
pub async fn advance(pool: &SqlitePool, now: i64, retire_after: i64) -> Result<(), String> {
    let e = |e: sqlx::Error| e.to_string();
    let mut tx = pool.begin().await.map_err(e)?;
    let has_active: Option<String> =
        sqlx::query_scalar("SELECT kid FROM signing_keys WHERE state = 'active' LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(e)?;
    if has_active.is_none() {
        let kid = insert_key(&mut tx, "active", None, now).await?;
        tracing::info!(%kid, "generated a new ES256 signing key");
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
    now: i64,
    retire_after: i64,
) -> Result<KeyRing, String> {
    advance(pool, now, retire_after).await?;
    load(pool).await
}

/// The current key ring: the active key signs; every key not retired is published.
pub async fn load(pool: &SqlitePool) -> Result<KeyRing, String> {
    let rows = sqlx::query(
        "SELECT kid, private_der, public_jwk, state FROM signing_keys WHERE state != 'retired' ORDER BY created_at",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| e.to_string())?;
    let mut active = None;
    let mut verifying = Vec::new();
    let mut published = Vec::new();
    for row in rows {
        let kid: String = row.get("kid");
        let der: Vec<u8> = row.get("private_der");
        let jwk_text: String = row.get("public_jwk");
        let state: String = row.get("state");
        let jwk: Value = serde_json::from_str(&jwk_text).map_err(|e| format!("key {kid}: {e}"))?;
        let (Some(x), Some(y)) = (jwk["x"].as_str(), jwk["y"].as_str()) else {
            return Err(format!("key {kid}: stored JWK lacks x/y"));
        };
        let decoding =
            DecodingKey::from_ec_components(x, y).map_err(|e| format!("key {kid}: {e}"))?;
        verifying.push((kid.clone(), decoding));
        published.push(jwk);
        if state == "active" {
            active = Some((kid, EncodingKey::from_ec_der(&der)));
        }
    }
    let (active_kid, encoding) = active.ok_or("no active signing key")?;
    Ok(KeyRing {
        active_kid,
        encoding,
        verifying,
        jwks: json!({ "keys": published }),
    })
}
