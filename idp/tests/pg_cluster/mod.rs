//! The PostgreSQL cluster of this test binary: one per run (started at first use, stopped and
//! deleted by its watchdog when the binary exits), one fresh database per test.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::OnceLock;
use test_support::postgres::{PostgresCluster, SKIP_ENV, skip_requested};

static CLUSTER: OnceLock<Result<PostgresCluster, String>> = OnceLock::new();

/// The shared cluster; `None` only when the PostgreSQL tests were switched off explicitly.
/// Fails the test (with what to do) when the server cannot be found or started.
pub fn cluster() -> Option<&'static PostgresCluster> {
    if skip_requested() {
        eprintln!("PostgreSQL test skipped: {SKIP_ENV} is set");
        return None;
    }
    match CLUSTER.get_or_init(PostgresCluster::start) {
        Ok(cluster) => Some(cluster),
        Err(e) => panic!("{e}"),
    }
}

/// A fresh database on the shared cluster (its URL).
pub fn database(prefix: &str) -> Option<String> {
    cluster().map(|c| c.create_database(prefix).unwrap())
}
