//! `idp end-sessions --sub SUB` (or `--sid SID`): an administrator ends a user's token sessions
//! (every one of them, or one). Their refresh tokens stop working and their `sid`s enter the
//! revocation feed, as at a logout; in the same transaction each ended session is recorded as a
//! security event, which the running server sends within a second as a CAEP `session-revoked`
//! SET to its SSF streams and as a back-channel logout token to the session's client.

use crate::settings::Settings;
use crate::store::StoreOpenError;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum EndSessionsError {
    #[error(transparent)]
    Open(#[from] StoreOpenError),
    #[error("ending sessions: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Which sessions to end.
pub enum Which<'a> {
    Subject(&'a str),
    Session(&'a str),
}

/// Ends the sessions `which` names, in one transaction; gives how many were live.
pub async fn end_sessions(
    settings: &Settings,
    which: Which<'_>,
) -> Result<usize, EndSessionsError> {
    let store = crate::store::open(&settings.database).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let sids = match which {
        Which::Subject(sub) => store.live_sessions_of_subject(sub, now).await?,
        Which::Session(sid) => vec![sid.to_owned()],
    };
    let feed_exp = now + settings.max_access_token_ttl_seconds();
    let mut tx = store.begin().await?;
    for sid in &sids {
        tx.end_session(sid, feed_exp, now).await?;
    }
    tx.commit().await?;
    Ok(sids.len())
}
