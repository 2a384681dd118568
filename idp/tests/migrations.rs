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
