//! Shared state of the running server.

use crate::federation::Hub;
use crate::http::metrics::Metrics;
use crate::oauth::dpop::Checker;
use crate::oauth::dpop::nonce::{NONCE_KEY_PURPOSE, NonceKey};
use crate::oauth::grants::GrantContext;
use crate::oauth::keys::encryption::Kek;
use crate::oauth::keys::{self, KeyError, KeyPolicy, KeyRing};
use crate::oauth::users::Passwords;
use crate::settings::Settings;
use crate::store::{Store, StoreOpenError};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct AppState {
    pub settings: Settings,
    /// Everything durable (SQLite by default; see [`crate::store`]).
    pub store: Arc<dyn Store>,
    keys: RwLock<Arc<KeyRing>>,
    /// Seals and opens the signing keys' private parts in the store.
    kek: Kek,
    pub passwords: Passwords,
    pub metrics: Metrics,
    /// DPoP server nonces (derived from the KEK, so every replica hands out and accepts the
    /// same ones).
    dpop_nonces: NonceKey,
    /// Set when the server starts shutting down (long polls answer at once).
    shutdown: tokio::sync::watch::Sender<bool>,
    /// The federated issuers' keys (the revocation-hub role; empty without `[federation]`).
    pub hub: Arc<Hub>,
    /// Moved on whenever the security-event outbox gained rows (SSF polls wait on it).
    pub outbox: crate::store::RevocationSignal,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreOpenError),
    #[error(transparent)]
    Kek(#[from] keys::encryption::KekError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl AppState {
    /// Opens the database (migrating it) and loads or creates the signing key.
    pub async fn open(settings: Settings) -> Result<Arc<AppState>, StartError> {
        let store = crate::store::open(&settings.database).await?;
        let kek = Kek::load(&settings.key_encryption)?;
        let keys =
            keys::load_or_create(&*store, &kek, KeyPolicy::of(&settings), unix_now()).await?;
        let passwords = Passwords::new(settings.password_policy, Arc::clone(&store));
        let settings_federation = settings.federation.clone();
        let metrics = Metrics::new(passwords.checks());
        let dpop_nonces = NonceKey::new(
            kek.derive_hmac_key(NONCE_KEY_PURPOSE)?,
            settings.dpop.nonce_lifetime_seconds,
        );
        Ok(Arc::new(AppState {
            settings,
            store,
            keys: RwLock::new(Arc::new(keys)),
            kek,
            passwords,
            metrics,
            dpop_nonces,
            shutdown: tokio::sync::watch::Sender::new(false),
            hub: Arc::new(Hub::new(&settings_federation)),
            outbox: crate::store::RevocationSignal::default(),
        }))
    }
}

impl AppState {
    /// Tells long polls to answer now: the server is shutting down.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// `true` once [`Self::begin_shutdown`] was called.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The key that seals signing keys in the store (for [`keys::schedule_rotation`]).
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    /// What the grants use, with `keys` (one snapshot, from [`Self::keys`]) for the whole
    /// issuance.
    pub fn grant_context<'a>(&'a self, keys: &'a KeyRing) -> GrantContext<'a> {
        GrantContext {
            settings: &self.settings,
            store: &*self.store,
            keys,
            dpop_jkt: None,
        }
    }

    /// What checking DPoP proofs uses.
    pub fn dpop(&self) -> Checker<'_> {
        Checker {
            policy: &self.settings.dpop,
            nonces: &self.dpop_nonces,
            store: &*self.store,
        }
    }

    /// The current key ring (cheap: an `Arc` clone).
    pub fn keys(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Moves key rotations along and reloads the ring (a rotation scheduled with
    /// `idp rotate-key` by another process is picked up here).
    pub async fn refresh_keys(&self) -> Result<(), KeyError> {
        keys::advance(
            &*self.store,
            &self.kek,
            KeyPolicy::of(&self.settings),
            unix_now(),
        )
        .await?;
        let ring = keys::load(&*self.store, &self.kek).await?;
        self.install_keys(Arc::new(ring));
        Ok(())
    }

    /// Replaces the key ring: issuances that already took their snapshot keep theirs.
    pub fn install_keys(&self, ring: Arc<KeyRing>) {
        match self.keys.write() {
            Ok(mut k) => *k = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
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
