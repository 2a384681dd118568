//! Shared state of the running server.

use crate::keys::{self, KeyRing};
use crate::lockout::Lockout;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::Store;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

pub struct AppState {
    pub settings: Settings,
    /// Everything durable (SQLite by default; see [`crate::store`]).
    pub store: Arc<dyn Store>,
    keys: RwLock<Arc<KeyRing>>,
    pub lockout: Lockout,
    /// Bounds concurrent argon2 computations.
    pub hashing: Semaphore,
    pub metrics: Metrics,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl AppState {
    /// Opens the database (migrating it) and loads or creates the signing key.
    pub async fn open(settings: Settings) -> Result<Arc<AppState>, String> {
        let store = crate::store::open(&settings.database).await?;
        let keys = keys::load_or_create(
            &*store,
            settings.signing_algorithm,
            unix_now(),
            settings.key_retire_after_seconds(),
        )
        .await?;
        let lockout = Lockout::new(settings.password_policy);
        let hashing = Semaphore::new(settings.password_policy.max_concurrent_hashes);
        Ok(Arc::new(AppState {
            settings,
            store,
            keys: RwLock::new(Arc::new(keys)),
            lockout,
            hashing,
            metrics: Metrics::new(),
        }))
    }
}

impl AppState {
    /// The current key ring (cheap: an `Arc` clone).
    pub fn keys(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Moves key rotations along and reloads the ring (a rotation scheduled with
    /// `idp rotate-key` by another process is picked up here).
    pub async fn refresh_keys(&self) -> Result<(), String> {
        keys::advance(
            &*self.store,
            self.settings.signing_algorithm,
            unix_now(),
            self.settings.key_retire_after_seconds(),
        )
        .await?;
        let ring = keys::load(&*self.store).await?;
        match self.keys.write() {
            Ok(mut k) => *k = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
        Ok(())
    }

    /// Runs [`Self::refresh_keys`] every `period` until the process ends.
    pub fn spawn_key_refresh(self: &Arc<Self>, period: Duration) {
        let state = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                if let Err(e) = state.refresh_keys().await {
                    tracing::error!(error = %e, "key refresh failed; keeping the current keys");
                }
            }
        });
    }

    /// Drops expired records (see [`Store::purge_expired`]) every `period` until the process
    /// ends.
    pub fn spawn_purge(self: &Arc<Self>, period: Duration) {
        let state = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                if let Err(e) = state.store.purge_expired(unix_now()).await {
                    tracing::warn!(error = %e, "purging expired records failed");
                }
            }
        });
    }
}
