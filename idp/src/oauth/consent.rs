//! Consent, remembered per user and client: the union of every scope the user has granted it.

use crate::store::{Store, StoreResult};

/// Whether `sub` has granted `client_id` every one of `scopes`.
pub async fn covers(
    store: &dyn Store,
    sub: &str,
    client_id: &str,
    scopes: &[String],
) -> StoreResult<bool> {
    let granted = store
        .consented_scopes(sub, client_id)
        .await?
        .unwrap_or_default();
    let granted: Vec<&str> = granted.split(' ').collect();
    Ok(scopes.iter().all(|s| granted.contains(&s.as_str())))
}

/// Records that `sub` granted `client_id` `scopes` (added to what was granted before).
pub async fn record(
    store: &dyn Store,
    sub: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> StoreResult<()> {
    let mut tx = store.begin().await?;
    let before = tx.consented_scopes(sub, client_id).await?;
    let mut all: Vec<String> = before
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for s in scopes {
        if !all.contains(s) {
            all.push(s.clone());
        }
    }
    tx.set_consent(sub, client_id, &all.join(" "), now).await?;
    tx.commit().await
}
