//! The migrations embedded in the binary (`idp::store::migrations`) are exactly the files of
//! `idp/migrations/` and `idp/migrations-postgres/` as sqlx reads them: same versions,
//! descriptions, kinds, transaction settings and checksums. A checksum that differed would make
//! every database migrated by an earlier build refuse to start ("migration was previously
//! applied but has been modified"); a file not listed would never run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use sqlx::migrate::Migrator;
use std::path::Path;

async fn same_as_directory(embedded: Migrator, dir: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let from_files = Migrator::new(path.as_path()).await.unwrap();
    let describe = |m: &Migrator| -> Vec<String> {
        m.iter()
            .map(|m| {
                format!(
                    "{} {:?} {:?} no_tx={} {:02x?}",
                    m.version, m.description, m.migration_type, m.no_tx, m.checksum
                )
            })
            .collect()
    };
    assert!(from_files.iter().count() > 0, "no migration files in {dir}");
    assert_eq!(describe(&embedded), describe(&from_files), "{dir}");
    for (a, b) in embedded.iter().zip(from_files.iter()) {
        assert_eq!(
            a.sql.as_str(),
            b.sql.as_str(),
            "{dir}: version {}",
            a.version
        );
    }
}

#[tokio::test]
async fn the_sqlite_migrations_are_the_directory_s() {
    same_as_directory(idp::store::migrations::sqlite(), "migrations").await;
}

#[tokio::test]
async fn the_postgres_migrations_are_the_directory_s() {
    same_as_directory(idp::store::migrations::postgres(), "migrations-postgres").await;
}

/// SQLite's 0009 rebuilds the revocation feed's table (a CHECK constraint cannot change in
/// place): a database migrated by an earlier build keeps its entries, and its cursor never goes
/// back — the AUTOINCREMENT high-water mark survives, also when the newest entries were purged.
#[tokio::test]
async fn the_sqlite_feed_rebuild_keeps_entries_and_the_cursor() {
    use sqlx::ConnectOptions;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/idp.sqlite?mode=rwc", dir.path().display());
    let before_cutoffs: Vec<_> = idp::store::migrations::sqlite()
        .iter()
        .filter(|m| m.version <= 8)
        .cloned()
        .collect();
    let mut conn = url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .unwrap()
        .connect()
        .await
        .unwrap();
    Migrator::with_migrations(before_cutoffs)
        .run(&mut conn)
        .await
        .unwrap();
    for (kind, value) in [("jti", "j-1"), ("sid", "s-1"), ("jti", "j-3")] {
        sqlx::query("INSERT INTO revocations (kind, value, exp, revoked_at) VALUES (?, ?, ?, ?)")
            .bind(kind)
            .bind(value)
            .bind(4_000_000_000_i64)
            .bind(1_i64)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // the newest entry purged: only the sequence remembers number 3
    sqlx::query("DELETE FROM revocations WHERE value = 'j-3'")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    let store = idp::store::open(&url).await.unwrap();
    let (entries, cursor) = store.revocations_since(None, 2, 100).await.unwrap();
    let kept: Vec<_> = entries
        .iter()
        .map(|e| (e.seq, e.kind.as_str(), e.value.as_str(), e.iss.clone()))
        .collect();
    assert_eq!(kept, [(1, "jti", "j-1", None), (2, "sid", "s-1", None)]);
    assert_eq!(cursor, 2);
    assert_eq!(store.revocations_since(Some(2), 2, 100).await.unwrap().1, 3);
    assert!(store.is_revoked("j-1", Some("s-1")).await.unwrap());
    let mut tx = store.begin().await.unwrap();
    tx.revoke_jti("j-4", 4_000_000_000, 2).await.unwrap();
    tx.commit().await.unwrap();
    let (after, _) = store.revocations_since(Some(3), 2, 100).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[0].seq, 4,
        "a number handed out before is never reused"
    );
}
