//! The in-process side of the revocation wake-up: a counter that every committed revocation
//! moves on (by this process's commits; on PostgreSQL also by the LISTEN task, for every other
//! replica's), watched by the feed's long polls.

use std::sync::Arc;
use tokio::sync::watch;

/// Shared by a store, its transactions and the long polls waiting on it.
#[derive(Clone)]
pub struct RevocationSignal(Arc<watch::Sender<u64>>);

impl Default for RevocationSignal {
    fn default() -> Self {
        RevocationSignal(Arc::new(watch::Sender::new(0)))
    }
}

impl RevocationSignal {
    /// Wakes every subscriber.
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose `changed()` completes at the next [`RevocationSignal::notify`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}
