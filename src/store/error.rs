//! What went wrong with the database, said so the operator knows what to fix.

use std::path::PathBuf;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("the database writer stopped before the commit was written (nothing from it was stored)")]
    WriterGone,
    #[error(
        "database {path}: the disk is full; free some space and run again (nothing already stored was lost)"
    )]
    DiskFull { path: PathBuf },
    #[error(
        "database {path}: a write failed ({message}); check free space, quotas and permissions, then run again (nothing already stored was lost)"
    )]
    Io { path: PathBuf, message: String },
    #[error("database {path}: {message}")]
    Sqlite { path: PathBuf, message: String },
    #[error("database {path}: cannot migrate the schema: {message}")]
    Migration { path: PathBuf, message: String },
    /// The database or its directory is there but not open to the user the job runs as.
    #[error("database {0}")]
    Access(String),
    /// The file is not one this version of the job may open: another application's, or one a
    /// newer version migrated. Refused before a byte of it changes.
    #[error("database {path} {why}")]
    NotOurs { path: PathBuf, why: String },
}
