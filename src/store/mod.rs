//! The SQLite file, in rooms named after what they keep: `open` (the only place that opens
//! it, with its pragmas and migrations), `commit` (a page's rows together with the stream's
//! checkpoint, in one transaction) and `upsert` (one row), `staging`, `quarantine`, `deferred`
//! (indexes set aside for a first load), `runs`, `pace_state`, `status`, `snapshot`, `ours`
//! (whether a file is this job's), and below them `checkpoint`, `bind`, `statements` and
//! `writer`.
//!
//! Terms: a *row* is one item as typed columns plus its `raw_json`; a *checkpoint* is the
//! stream's `sync_state` row (see `checkpoint`). Rows whose content did not change are not
//! written at all, so an unchanged run leaves the data tables byte for byte as they were.

mod bind;
pub mod checkpoint;
mod commit;
mod deferred;
mod open;
mod ours;
mod pace_state;
mod quarantine;
mod runs;
mod snapshot;
mod staging;
mod statements;
mod status;
mod upsert;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, TransactionBehavior};

pub use bind::{Record, Ts};
pub use checkpoint::Checkpoint;
pub use commit::{Children, Commit, Committed, Prune, Quarantined, Removals, Row, Staged};
pub use deferred::Restored;
pub use open::{open, open_read_only};
pub use quarantine::counts_misses;
pub use runs::Params;
pub use status::{RunRow, Status, StreamState, status};
pub use writer::{Pending, Writer};

use open::classify;

use crate::time::Timestamp;

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

pub use crate::time::iso;

/// The database, shared by all streams; writes are serialised through the one connection.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Whether `quarantine` may hold rows: when it cannot, committing a row skips releasing it.
    quarantine_in_use: std::sync::atomic::AtomicBool,
    /// The `sync_runs` id of the run in progress (0: none), whose counts every commit updates.
    run: std::sync::atomic::AtomicI64,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, Error> {
        let conn = open(path)?;
        let in_use = conn
            .query_row(statements::get("quarantine", "count"), [], |r| r.get::<_, i64>(0))
            .map_err(|e| classify(path, e))?
            > 0;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            quarantine_in_use: std::sync::atomic::AtomicBool::new(in_use),
            run: std::sync::atomic::AtomicI64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies what the WAL holds into the database as far as readers allow (a passive
    /// checkpoint: it waits for no one and blocks no one). At the end of a run, so the file
    /// analysts open is whole and the next run's WAL starts from the beginning.
    pub fn checkpoint(&self) -> Result<(), Error> {
        self.with(|c| c.query_row(statements::get("sqlite_schema", "checkpoint"), [], |_| Ok(())))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, Error> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(|e| classify(&self.path, e))
    }

    pub fn load_checkpoint(&self, stream: &str) -> Result<Checkpoint, Error> {
        self.with(|c| checkpoint::load(c, stream))
    }

    /// Saves a checkpoint on its own (a pass restarted, a bootstrap's starting mark).
    pub fn save_checkpoint(
        &self,
        stream: &str,
        checkpoint: &Checkpoint,
        now: Timestamp,
    ) -> Result<(), Error> {
        let now = iso(now);
        self.with(|c| checkpoint::save(c, stream, checkpoint, &now))
    }

    /// Proves the database can be written, without changing it.
    pub fn check_writable(&self) -> Result<(), Error> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.rollback()
        })
    }
}
