//! Storage failures, told apart by what the client should do: come back later (the database is
//! unreachable, restarting, overloaded, out of space, or a transaction lost a conflict: answered 503) or not
//! (anything else: 500).

/// A storage failure (the backend's own error, for the log).
#[derive(Debug, thiserror::Error)]
#[error("storage: {source}")]
pub struct StoreError {
    source: Box<dyn std::error::Error + Send + Sync>,
    unavailable: bool,
}

impl StoreError {
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError {
            source: e.into(),
            unavailable: false,
        }
    }

    /// A failure that a retry may not meet (the database is unreachable or restarting, or a
    /// transaction lost a conflict): nothing was written.
    pub fn unavailable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError {
            source: e.into(),
            unavailable: true,
        }
    }

    /// See [`StoreError::unavailable`].
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// SQLSTATE classes and codes that mean "try again": 08 connection exception, 53 insufficient
/// resources (too many connections, 53100 disk full, out of memory), 57P admin/crash shutdown
/// and "cannot connect now" (a server starting or stopping), 40001 serialization failure, 40P01
/// deadlock; SQLite's BUSY (5) and LOCKED (6) with their extended codes, FULL (13: the disk is
/// full, ENOSPC) and IOERR_WRITE (778: a write refused, e.g. EFBIG past RLIMIT_FSIZE). SQLite
/// rolls a statement or commit that fails with FULL or IOERR_WRITE back (and the transaction is
/// dropped without a commit): nothing was written, and the write works again once there is room.
fn is_transient_code(code: &str) -> bool {
    const SQLITE_IOERR_WRITE: i64 = 778;
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "40001"
        || code == "40P01"
        // SQLite's codes are decimal numbers below 10000; PostgreSQL's always have 5 characters
        || (code.len() < 5
            && matches!(code.parse::<i64>(), Ok(n) if matches!(n & 0xff, 5 | 6 | 13) || n == SQLITE_IOERR_WRITE))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let transient = match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| is_transient_code(&c)),
            _ => false,
        };
        if transient {
            StoreError::unavailable(e)
        } else {
            StoreError::new(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_transient_code;

    #[test]
    fn transient_codes() {
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "53100", "40001", "40P01", "5", "517",
            // a full disk (SQLITE_FULL) and a refused write (SQLITE_IOERR_WRITE): 503, not 500
            "13", "778",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        // SQLITE_IOERR (10) and its other kinds (a read, an fsync) are not known to be harmless
        for code in [
            "23505", "42P01", "19", "2067", "22001", "22005", "10", "266", "1034",
        ] {
            assert!(!is_transient_code(code), "{code}");
        }
    }
}
