//! `LISTEN idp_revocations`: every replica's revocations wake this replica's long polls. The
//! connection is re-established with backoff when it is lost (database restart, network), and
//! the waiters are woken after every (re)connection, since a revocation committed while nobody
//! listened sent its notification to no one.

use super::REVOCATION_CHANNEL;
use crate::store::RevocationSignal;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::Duration;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(super) fn spawn(pool: PgPool, signal: RevocationSignal) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        loop {
            match listen(&pool, &signal, &mut backoff).await {
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "revocation LISTEN connection failed");
                }
                Ok(()) => {}
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

/// Listens until the connection fails for good (then the caller backs off and starts again).
async fn listen(
    pool: &PgPool,
    signal: &RevocationSignal,
    backoff: &mut Duration,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(REVOCATION_CHANNEL).await?;
    *backoff = MIN_BACKOFF;
    signal.notify();
    loop {
        match listener.try_recv().await? {
            Some(_) => signal.notify(),
            // The connection was lost: whatever was committed meanwhile sent no notification
            // here, so the waiters read the feed again; the next call reconnects.
            None => signal.notify(),
        }
    }
}
