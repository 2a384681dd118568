//! Shared state of the running server.

use crate::keys::{self, KeyRing};
use crate::lockout::Lockout;
use crate::settings::Settings;
use sqlx::SqlitePool;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

pub struct AppState {
    pub settings: Settings,
    pub pool: SqlitePool,
    pub keys: KeyRing,
    pub lockout: Lockout,
    /// Bounds concurrent argon2 computations.
    pub hashing: Semaphore,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl AppState {
    /// Opens the database (migrating it) and loads or creates the signing key.
    pub async fn open(settings: Settings) -> Result<Arc<AppState>, String> {
        let pool = crate::db::open(&settings.database).await?;
        let keys = keys::load_or_create(&pool, unix_now()).await?;
        let lockout = Lockout::new(settings.password_policy);
        let hashing = Semaphore::new(settings.password_policy.max_concurrent_hashes);
        Ok(Arc::new(AppState {
            settings,
            pool,
            keys,
            lockout,
            hashing,
        }))
    }
}
