//! Why a change did not reach the database. Kept apart from `storage` so
//! that the silences and the notification log, which `storage` depends
//! on, can name it without a module cycle.
//!
//! The kinds matter to the caller: a full disk or a busy database is the
//! server's passing trouble (a client should retry, and nothing it sent is
//! wrong), a stopped writer or an unknown failure is not going away.

/// A failed commit. Cloned to every change the failed transaction held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// SQLITE_FULL: a write met ENOSPC (or a quota), or the database hit
    /// its size limit.
    #[error("database or disk is full")]
    DiskFull,
    /// SQLITE_IOERR and friends: the file system refused or lost a write.
    #[error("disk I/O error ({0})")]
    Io(String),
    /// SQLITE_BUSY / SQLITE_LOCKED: something else holds the database.
    #[error("database is busy ({0})")]
    Busy(String),
    /// The writer thread is gone: no change can be committed until Herald
    /// restarts.
    #[error("storage writer stopped")]
    Stopped,
    /// Anything else (a damaged database, a bug): retrying the same change
    /// will not help.
    #[error("{0}")]
    Failed(String),
}

impl WriteError {
    /// Whether the same change can succeed later without anyone changing
    /// Herald: space freed, the I/O error passed, the lock released.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            WriteError::DiskFull | WriteError::Io(_) | WriteError::Busy(_)
        )
    }

    /// The `reason` label of `herald_storage_write_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            WriteError::DiskFull => "disk_full",
            WriteError::Io(_) => "io",
            WriteError::Busy(_) => "busy",
            WriteError::Stopped => "stopped",
            WriteError::Failed(_) => "other",
        }
    }

    /// Every reason, for series that exist from the start.
    pub const REASONS: [&'static str; 5] = ["disk_full", "io", "busy", "stopped", "other"];

    /// Sorts an SQLite error by its primary result code: the kind is all
    /// a caller may act on, the text is for people.
    pub fn from_sql(e: &rusqlite::Error) -> WriteError {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => WriteError::DiskFull,
            // A file system remounted read-only refuses writes until an
            // operator repairs it; like an I/O error, it is the server's.
            Some(ErrorCode::SystemIoFailure | ErrorCode::ReadOnly | ErrorCode::CannotOpen) => {
                WriteError::Io(e.to_string())
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                WriteError::Busy(e.to_string())
            }
            _ => WriteError::Failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn kinds_come_from_the_result_code() {
        use rusqlite::ffi;
        assert_eq!(
            WriteError::from_sql(&sql(ffi::SQLITE_FULL)),
            WriteError::DiskFull
        );
        // Extended codes keep their primary kind.
        assert!(matches!(
            WriteError::from_sql(&sql(ffi::SQLITE_IOERR_FSYNC)),
            WriteError::Io(_)
        ));
        assert!(matches!(
            WriteError::from_sql(&sql(ffi::SQLITE_BUSY_SNAPSHOT)),
            WriteError::Busy(_)
        ));
        let corrupt = WriteError::from_sql(&sql(ffi::SQLITE_CORRUPT));
        assert!(matches!(corrupt, WriteError::Failed(_)));
        assert!(!corrupt.retryable());
        assert!(WriteError::DiskFull.retryable());
        assert!(!WriteError::Stopped.retryable());
        for e in [
            WriteError::DiskFull,
            WriteError::Io(String::new()),
            WriteError::Busy(String::new()),
            WriteError::Stopped,
            corrupt,
        ] {
            assert!(WriteError::REASONS.contains(&e.reason()));
        }
    }
}
