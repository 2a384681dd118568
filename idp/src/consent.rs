//! Consent, remembered per user and client: the union of every scope the user has granted it.

use sqlx::SqlitePool;

/// Whether `sub` has granted `client_id` every one of `scopes`.
pub async fn covers(
    pool: &SqlitePool,
    sub: &str,
    client_id: &str,
    scopes: &[String],
) -> Result<bool, sqlx::Error> {
    let granted: Option<String> =
        sqlx::query_scalar("SELECT scope FROM consents WHERE sub = ? AND client_id = ?")
            .bind(sub)
            .bind(client_id)
            .fetch_optional(pool)
            .await?;
    let granted = granted.unwrap_or_default();
    let granted: Vec<&str> = granted.split(' ').collect();
    Ok(scopes.iter().all(|s| granted.contains(&s.as_str())))
}

/// Records that `sub` granted `client_id` `scopes` (added to what was granted before).
pub async fn record(
    pool: &SqlitePool,
    sub: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_write(pool).await?;
    let before: Option<String> =
        sqlx::query_scalar("SELECT scope FROM consents WHERE sub = ? AND client_id = ?")
            .bind(sub)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?;
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
    sqlx::query(
        "INSERT INTO consents (sub, client_id, scope, granted_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (sub, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
    )
    .bind(sub)
    .bind(client_id)
    .bind(all.join(" "))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
