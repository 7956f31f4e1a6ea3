//! The database handle every room works through: one connection, serialised.

use crate::poison::Unpoisoned as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, TransactionBehavior};

use super::checkpoint::{self, Checkpoint};
use super::error::Error;
use super::open::{classify, open};
use super::statements;

/// The database, shared by all streams; writes are serialised through the one connection.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Whether `quarantine` may hold rows: when it cannot, committing a row skips releasing it.
    pub(super) quarantine_in_use: std::sync::atomic::AtomicBool,
    /// The `sync_runs` id of the run in progress (0: none), whose counts every commit updates.
    pub(super) run: std::sync::atomic::AtomicI64,
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

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Copies what the WAL holds into the database as far as readers allow (a passive
    /// checkpoint: it waits for no one and blocks no one). At the end of a run, so the file
    /// analysts open is whole and the next run's WAL starts from the beginning.
    /// The end of a run: the WAL's pages into the database (passive: no reader waits), then the
    /// WAL file truncated to nothing if no reader is in the way at that moment (without waiting
    /// for one), so between runs the disk holds the database and an empty WAL, not the WAL's
    /// high-water mark (up to `journal_size_limit`) beside it.
    pub(crate) fn checkpoint(&self) -> Result<(), Error> {
        self.with(|c| {
            c.query_row(statements::get("sqlite_schema", "checkpoint"), [], |_| Ok(()))?;
            c.busy_timeout(std::time::Duration::ZERO)?;
            let truncated = c.query_row(statements::get("sqlite_schema", "truncate_wal"), [], |_| Ok(()));
            c.busy_timeout(super::open::BUSY_TIMEOUT)?;
            match truncated {
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy => {
                    Ok(())
                }
                other => other,
            }
        })
    }

    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, Error> {
        let mut conn = self.conn.locked();
        f(&mut conn).map_err(|e| classify(&self.path, e))
    }

    pub(crate) fn load_checkpoint(&self, stream: &str) -> Result<Checkpoint, Error> {
        self.with(|c| checkpoint::load(c, stream))
    }

    /// Proves the database can be written, without changing it.
    pub fn check_writable(&self) -> Result<(), Error> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.rollback()
        })
    }
}
