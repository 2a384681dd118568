//! The schema migrations of each backend, embedded in the binary. sqlx's `migrate!` macro does
//! the same from a directory, but only through sqlx's proc-macro crate, which builds a second copy
//! of sqlx (both drivers and SQLite's C library) for the compiler; listing the files here keeps
//! the build to one. The versions, descriptions and checksums are the ones `migrate!` gives
//! (`idp/tests/migrations.rs` compares them with sqlx's own reading of the directories), so a
//! database migrated by an earlier build is recognised as up to date.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// One migration file: its version, its description (the file name's rest, `_` read as a
/// space), its SQL.
type Embedded = (i64, &'static str, &'static str);

const SQLITE: &[Embedded] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "sessions",
        include_str!("../../migrations/0002_sessions.sql"),
    ),
    (
        3,
        "key rotation",
        include_str!("../../migrations/0003_key_rotation.sql"),
    ),
    (
        4,
        "authorization codes",
        include_str!("../../migrations/0004_authorization_codes.sql"),
    ),
    (
        5,
        "browser sessions",
        include_str!("../../migrations/0005_browser_sessions.sql"),
    ),
    (
        6,
        "form tokens",
        include_str!("../../migrations/0006_form_tokens.sql"),
    ),
    (7, "dpop", include_str!("../../migrations/0007_dpop.sql")),
    (
        8,
        "login failures",
        include_str!("../../migrations/0008_login_failures.sql"),
    ),
    (
        9,
        "cutoffs",
        include_str!("../../migrations/0009_cutoffs.sql"),
    ),
    (
        10,
        "security events",
        include_str!("../../migrations/0010_security_events.sql"),
    ),
    (
        11,
        "ssf received",
        include_str!("../../migrations/0011_ssf_received.sql"),
    ),
];

const POSTGRES: &[Embedded] = &[
    (
        1,
        "init",
        include_str!("../../migrations-postgres/0001_init.sql"),
    ),
    (
        2,
        "dpop",
        include_str!("../../migrations-postgres/0002_dpop.sql"),
    ),
    (
        3,
        "cutoffs",
        include_str!("../../migrations-postgres/0003_cutoffs.sql"),
    ),
    (
        4,
        "security events",
        include_str!("../../migrations-postgres/0004_security_events.sql"),
    ),
    (
        5,
        "ssf received",
        include_str!("../../migrations-postgres/0005_ssf_received.sql"),
    ),
];

fn migrator(list: &[Embedded]) -> Migrator {
    Migrator::with_migrations(
        list.iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    // as sqlx reads a file: its first line can opt out of the transaction
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

/// The SQLite schema's migrations (`idp/migrations/`).
pub fn sqlite() -> Migrator {
    migrator(SQLITE)
}

/// The PostgreSQL schema's migrations (`idp/migrations-postgres/`).
pub fn postgres() -> Migrator {
    migrator(POSTGRES)
}
