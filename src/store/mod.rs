//! The SQLite file: opening it (the only place that does), migrations, and the one write that
//! matters — a page's rows together with the stream's checkpoint, in one transaction.
//!
//! Terms: a *row* is one item as typed columns plus its `raw_json`; a *checkpoint* is the
//! stream's `sync_state` row (see `checkpoint`). Rows whose content did not change are not
//! written at all, so an unchanged run leaves the data tables byte for byte as they were.

mod bind;
pub mod checkpoint;
mod ours;
mod snapshot;
mod statements;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use chrono::SecondsFormat;
use include_dir::{Dir, include_dir};
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use rusqlite_migration::Migrations;

pub use bind::{Record, Ts};
pub use checkpoint::Checkpoint;
pub use writer::{Pending, Writer};

use crate::api::types::Timestamp;

static MIGRATIONS_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/sql/migrations");
static MIGRATIONS: LazyLock<Result<Migrations<'static>, String>> =
    LazyLock::new(|| Migrations::from_directory(&MIGRATIONS_DIR).map_err(|e| e.to_string()));

/// The page cache, KiB.
const CACHE_KIB: i64 = 8 * 1024;

/// The page size of a new database, bytes: SQLite's default, chosen by measurement. 16 KiB pages
/// fill an empty bookings table about a third faster (a dozen 1 KiB rows a page, fewer splits),
/// but past a few hundred thousand rows every group dirties leaf pages all over the two
/// randomly keyed indexes (`id`, `event_id`), each dirty page is written whole to the WAL, and
/// 16 KiB pages fall behind: 10,000 against 12,400 rows/s by a million rows (BENCHMARKS.md).
/// A long-lived database spends its life in the second regime.
const PAGE_SIZE: i64 = 4 * 1024;
/// The page cache while deferred indexes are built: SQLite's sorter sizes its in-memory runs by
/// it, and a build's sort is sequential, so a small cache costs little time and keeps memory flat.
const SORT_CACHE_KIB: i64 = 1024;
/// Sorter threads for an index build (`PRAGMA threads`): the machine's second core.
const SORT_THREADS: i64 = 2;

/// WAL bytes between automatic checkpoints (SQLite counts them in pages of the database's size).
const WAL_AUTOCHECKPOINT_BYTES: i64 = 40 * 1024 * 1024;
/// The WAL file is truncated to this after a checkpoint (bytes).
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How long a write waits for an analyst's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A timestamp as stored: UTC, millisecond precision, fixed width so text order is time order.
pub fn iso(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Opens (creating if needed) the database at `path`, sets the pragmas and migrates it.
/// WAL lets analysts read while the job writes; `synchronous=NORMAL` is durable across
/// process crashes in WAL mode, which is the failure this job must survive.
pub fn open(path: &Path) -> Result<Connection, Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        match crate::access::exists(dir) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::Sqlite {
                    path: path.to_owned(),
                    message: format!("the directory {} does not exist", dir.display()),
                });
            }
            Err(e) => return Err(Error::Access(crate::access::describe(dir, &e))),
        }
    }
    // A file that is there but not ours to read or write: said as such, not as SQLite's
    // "unable to open database file". (Asked with access(2): opening and closing the file
    // would drop any POSIX lock this process holds on it.)
    if let Err(e) = rustix::fs::access(path, rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK)
        && e == rustix::io::Errno::ACCESS
    {
        return Err(Error::Access(crate::access::describe(
            path,
            &std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        )));
    }
    let fail = |e: rusqlite::Error| classify(path, e);
    ours::check(path, MIGRATIONS_DIR.dirs().count())?;
    create_private(path)?;
    warn_if_world_readable(path);
    #[allow(clippy::disallowed_methods)] // this is the one place allowed to open a connection
    let mut conn = Connection::open(path).map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    // Before WAL: a database in WAL mode can no longer change its page size.
    conn.pragma_update(None, "page_size", PAGE_SIZE).map_err(fail)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(fail)?;
    keep_wal_files(&conn).map_err(fail)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(fail)?;
    // Temporary files in memory: a statement journal (SQLite's undo of one statement inside a
    // larger transaction) on disk was measured costing more writes than the data itself.
    conn.pragma_update(None, "temp_store", "MEMORY").map_err(fail)?;
    // Checkpoint less often than SQLite's default 1,000 pages: a page rewritten by several
    // groups (an index leaf) is copied into the database once per checkpoint, not once per
    // group. The WAL file is cut back after a checkpoint that leaves it larger.
    let page_size: i64 = conn
        .pragma_query_value(None, "page_size", |r| r.get(0))
        .map_err(fail)?;
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        WAL_AUTOCHECKPOINT_BYTES / page_size.max(512),
    )
    .map_err(fail)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
        .map_err(fail)?;
    // Enough page cache for a whole group's dirty pages: a smaller one spills them to the WAL
    // mid-transaction and writes them twice. A fixed size, so memory stays flat.
    conn.pragma_update(None, "cache_size", -CACHE_KIB).map_err(fail)?;
    // Off while migrating (the bundled SQLite defaults it to on, and a migration's transaction
    // cannot change it): rebuilding `orders` by SQLite's documented procedure drops the old table,
    // which would otherwise cascade into every line item, transaction and refund.
    conn.pragma_update(None, "foreign_keys", "OFF").map_err(fail)?;
    let migrations = MIGRATIONS.as_ref().map_err(|m| Error::Migration {
        path: path.to_owned(),
        message: m.clone(),
    })?;
    migrations.to_latest(&mut conn).map_err(|e| match e {
        rusqlite_migration::Error::RusqliteError { err, .. } => classify(path, err),
        other => Error::Migration {
            path: path.to_owned(),
            message: other.to_string(),
        },
    })?;
    // Only now: a migration that rebuilds a table (SQLite's documented procedure) must not
    // cascade the old table's drop into its children.
    conn.pragma_update(None, "foreign_keys", "ON").map_err(fail)?;
    Ok(conn)
}

/// The mode a new database is created with: the job's user writes, its group (analysts)
/// reads, nobody else: it holds customers' names, e-mail addresses and phone numbers. SQLite
/// gives the `-wal` and `-shm` files the database's mode.
const DATABASE_MODE: u32 = 0o640;

/// The database holds customers' names, e-mail addresses and phone numbers: say so when every
/// user of the machine can read it (made by hand, or by an older version under umask 022).
fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "every user of this machine can read the database, which holds customers' personal data: chmod 640 it (and its -wal and -shm)"
        );
    }
}

/// Creates the database file, empty, with `DATABASE_MODE` whatever the umask, unless it
/// exists; never through a symlink (`O_EXCL`). SQLite then opens the file we made.
fn create_private(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(DATABASE_MODE)
        .open(path);
    match created {
        // The umask may have taken bits away; put back exactly ours.
        Ok(f) => f
            .set_permissions(std::fs::Permissions::from_mode(DATABASE_MODE))
            .map_err(|e| Error::Access(crate::access::describe(path, &e))),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Access(crate::access::describe(path, &e))),
    }
}

/// No checkpoint when the job's connection closes, so the `-wal` and `-shm` files stay. An
/// analyst in the job's group may read the database but not create files beside it, and SQLite
/// can open a WAL database read-only only while those two files exist: were they deleted at
/// close, `sqlite3 -readonly` would work during a run and fail after it. The close-time
/// checkpoint would also take an exclusive lock that makes readers' queries fail with
/// "database is locked" for its duration; `Store::checkpoint` copies the WAL into the database
/// at the end of a run without blocking anyone.
fn keep_wal_files(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map(|_| ())
}

/// Opens an existing database read-only, without migrating: what `status` uses, so looking never
/// changes anything.
pub fn open_read_only(path: &Path) -> Result<Connection, Error> {
    match crate::access::exists(path) {
        Ok(true) => {}
        Ok(false) => {
            return Err(Error::Sqlite {
                path: path.to_owned(),
                message: "does not exist yet: no sync has run".into(),
            });
        }
        Err(e) => return Err(Error::Access(crate::access::describe(path, &e))),
    }
    if let Err(e) = std::fs::File::open(path)
        && e.kind() == std::io::ErrorKind::PermissionDenied
    {
        return Err(Error::Access(crate::access::describe(path, &e)));
    }
    // Even a read-only connection writes read marks into another application's `-shm`.
    ours::check(path, usize::MAX)?;
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| classify(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// A stream's checkpoint as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamState {
    pub stream: String,
    pub high_water_mark: Option<String>,
    pub has_cursor: bool,
    pub cursor_saved_at: Option<String>,
    pub pass_in_progress: Option<String>,
    pub pass_pages: i64,
    pub last_completed_at: Option<String>,
}

/// One `sync_runs` row as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub status: String,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_unchanged: i64,
    pub requests: i64,
    pub retries: i64,
    pub rate_limited: i64,
    pub error: Option<String>,
    /// The adaptive pace at the end of the run, requests per second.
    pub pace_rps: Option<f64>,
    pub paused_ms: i64,
}

/// What `status` reports: recent runs, each stream's checkpoint, rows per table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub database: PathBuf,
    pub runs: Vec<RunRow>,
    pub streams: Vec<StreamState>,
    pub rows: Vec<(String, i64)>,
    /// Items in quarantine, per stream.
    pub quarantine: Vec<(String, i64)>,
    /// Tables whose secondary indexes wait for their first full load to complete.
    pub deferred_indexes: Vec<(String, i64)>,
    /// Parents waiting in `staging` for their per-parent lists, per stream: what a run's
    /// fan-out has still to do (a run in progress, or one that was stopped).
    pub staged: Vec<(String, i64)>,
}

/// Reads the status of the database at `path` without writing to it: the last `runs` runs, and
/// the rows of each of `tables` (live rows, where a table marks removals).
pub fn status(path: &Path, runs: i64, tables: &[&'static str]) -> Result<Status, Error> {
    let conn = open_read_only(path)?;
    let fail = |e: rusqlite::Error| classify(path, e);
    let mut stmt = conn
        .prepare(statements::get("sync_runs", "recent"))
        .map_err(fail)?;
    let runs = stmt
        .query_map(&[(":limit", &runs)], |r| {
            Ok(RunRow {
                id: r.get(0)?,
                started_at: r.get(1)?,
                ended_at: r.get(2)?,
                status: r.get(3)?,
                rows_inserted: r.get(4)?,
                rows_updated: r.get(5)?,
                rows_unchanged: r.get(6)?,
                requests: r.get(7)?,
                retries: r.get(8)?,
                rate_limited: r.get(9)?,
                error: r.get(10)?,
                pace_rps: r.get(11)?,
                paused_ms: r.get(12)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(fail)?;
    let mut stmt = conn.prepare(statements::get("sync_state", "all")).map_err(fail)?;
    let streams = stmt
        .query_map([], |r| {
            Ok(StreamState {
                stream: r.get(0)?,
                high_water_mark: r.get(1)?,
                has_cursor: r.get(2)?,
                cursor_saved_at: r.get(3)?,
                pass_in_progress: r.get(4)?,
                pass_pages: r.get(5)?,
                last_completed_at: r.get(6)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(fail)?;
    let mut rows = Vec::with_capacity(tables.len());
    for &table in tables {
        // A database written by an older version (status never migrates) may lack a table.
        match conn.query_row(statements::get(table, "count"), [], |r| r.get::<_, i64>(0)) {
            Ok(n) => rows.push((table.to_owned(), n)),
            Err(e) if e.to_string().contains("no such table") => {}
            Err(e) => return Err(fail(e)),
        }
    }
    let mut stmt = conn
        .prepare(statements::get("quarantine", "by_stream"))
        .map_err(fail)?;
    let quarantine = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(Iterator::collect)
        .map_err(fail)?;
    // A database from before migration 13 (status never migrates) has no such table.
    let deferred_indexes = match deferred_tables(&conn) {
        Ok(tables) => tables,
        Err(e) if e.to_string().contains("no such table") => Vec::new(),
        Err(e) => return Err(fail(e)),
    };
    // `staging` came with migration 05; an older database (status never migrates) has none.
    let staged = match conn.prepare(statements::get("staging", "by_stream")) {
        Ok(mut stmt) => stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(fail)?,
        Err(e) if e.to_string().contains("no such table") => Vec::new(),
        Err(e) => return Err(fail(e)),
    };
    Ok(Status {
        deferred_indexes,
        staged,
        database: path.to_owned(),
        runs,
        streams,
        rows,
        quarantine,
    })
}

fn classify(path: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => Error::DiskFull {
            path: path.to_owned(),
        },
        Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen | ErrorCode::ReadOnly) => Error::Io {
            path: path.to_owned(),
            message: e.to_string(),
        },
        _ => Error::Sqlite {
            path: path.to_owned(),
            message: e.to_string(),
        },
    }
}

/// Named SQL parameters, e.g. `(":id", Value::Text(..))`, for the store's own tables.
pub type Params = Vec<(&'static str, Value)>;

/// Whether `table` counts the complete scans that missed a row it cannot ask about by id
/// (legacy consents): such a row goes at two misses in a row.
pub fn counts_misses(table: &str) -> bool {
    statements::has(table, "missed")
}

/// One item as it will be stored.
#[derive(Debug)]
pub struct Row {
    /// The table, named as in the schema and as its statements file.
    pub table: &'static str,
    /// Its columns, as the stream typed them (see `bind`); binds `lookup`, `insert` and `update`.
    pub record: Box<dyn Record>,
    pub raw_json: String,
    /// The item's key in `quarantine` and `staging` (its id, or a consent's key).
    pub item_key: String,
}

/// How to remove a parent's listed items that the API no longer lists.
#[derive(Debug, Clone)]
pub enum Prune {
    /// Items without ids (line items): positions at or beyond this count.
    BeyondPosition(i64),
    /// Items with ids: ids not in this list.
    NotIn(Vec<String>),
}

/// One parent's whole list of one per-parent stream, replacing what is stored for it.
#[derive(Debug)]
pub struct Children {
    pub table: &'static str,
    pub parent_id: String,
    pub rows: Vec<Row>,
    pub prune: Prune,
    /// Items of the list that could not be read.
    pub quarantined: Vec<Quarantined>,
}

/// An item the job could not read, kept in `quarantine` until it reads.
#[derive(Debug, Clone)]
pub struct Quarantined {
    /// The stream, or the sub-resource table.
    pub stream: &'static str,
    /// Its id, or a fingerprint of its JSON.
    pub key: String,
    pub id: Option<String>,
    pub parent_id: Option<String>,
    pub error: String,
    pub raw_json: String,
}

/// Everything one page writes, in one transaction.
#[derive(Debug, Default)]
pub struct Commit {
    pub stream: &'static str,
    pub rows: Vec<Row>,
    pub children: Vec<Children>,
    /// The stream's checkpoint after this page; `None` leaves it as it is.
    pub checkpoint: Option<Checkpoint>,
    pub removals: Option<Removals>,
    pub quarantined: Vec<Quarantined>,
    /// A scan's first page: forget what the stream's previous scan listed.
    pub reset_seen: bool,
    /// Keys a scan listed on this page, remembered in `scan_seen`.
    pub seen: Vec<String>,
    /// After a complete scan: quarantined items of the stream not seen since then are dropped.
    pub sweep_quarantine_before: Option<Timestamp>,
    /// Parents to stage for the fan-out instead of writing: each one that differs from what is
    /// stored waits in `staging`; an identical one only counts as unchanged.
    pub stage: Vec<Row>,
    /// A staged parent now written with its children: it leaves `staging` (if not re-listed since).
    pub unstage: Option<Staged>,
}

/// A parent as it waits in `staging`.
#[derive(Debug, Clone)]
pub struct Staged {
    pub item_key: String,
    pub raw_json: String,
}

impl Commit {
    /// Rows it writes, for sizing a group.
    pub fn size(&self) -> usize {
        self.rows.len()
            + self.stage.len()
            + self.seen.len()
            + self.children.iter().map(|c| c.rows.len()).sum::<usize>()
            + 1
    }
}

/// What a commit wrote: row counts, and the items quarantined for the first time.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// Rows of the commit's own stream.
    pub counts: Counts,
    /// Rows of each per-parent stream written with it (a fan-out commit), by table.
    pub children: Vec<(&'static str, Counts)>,
    /// Parents put in `staging` for the fan-out.
    pub staged: u64,
    pub newly_quarantined: Vec<Quarantined>,
}

/// What a complete scan decided about the live rows it did not list.
#[derive(Debug, Clone)]
pub struct Removals {
    pub table: &'static str,
    /// Rows the API confirmed gone (`GET …/{id}` answered 404).
    pub confirmed: Vec<String>,
    /// Rows with no id to ask about (legacy consents): one more miss; removed at two.
    pub missed: Vec<String>,
}

/// Rows written by one commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
}

impl Committed {
    /// Every row the commit wrote, its per-parent streams' included.
    pub fn total(&self) -> Counts {
        let mut c = self.counts;
        for (_, child) in &self.children {
            c.add(*child);
        }
        c
    }
}

impl Counts {
    pub fn add(&mut self, o: Counts) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.removed += o.removed;
    }
}

/// What `Store::restore_indexes` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Indexes built.
    pub indexes: usize,
    /// Rows removed because a keyless first load had stored their id again later.
    pub folded: usize,
}

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

    /// Writes commits in one transaction, in order: each page's rows, their sub-resources, the
    /// stream's checkpoint, its quarantined items and (at the end of a complete scan) its
    /// removals. All or nothing: a page and the cursor that follows it are both stored, or
    /// neither is, so a kill at any instant loses and repeats nothing; a kill loses at most the
    /// whole group, which the next run fetches again from the last checkpoint that landed. Many
    /// commits in one transaction write fewer WAL frames (an index page touched by every commit
    /// is written once) and sync once.
    pub fn commit_group(&self, commits: &[Commit], now: Timestamp) -> Result<Vec<Committed>, Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut all = Vec::with_capacity(commits.len());
            let mut group = Counts::default();
            for commit in commits {
                let committed = self.apply(&tx, commit, &now)?;
                group.add(committed.total());
                all.push(committed);
            }
            // The running run's row counts what landed, in the same transaction: `status`
            // shows it live, and a run killed mid-way leaves exactly what it committed.
            let run = self.run.load(std::sync::atomic::Ordering::Relaxed);
            if run != 0 && group != Counts::default() {
                tx.prepare_cached(statements::get("sync_runs", "committed"))?
                    .execute(rusqlite::named_params! {
                        ":id": run,
                        ":inserted": group.inserted as i64,
                        ":updated": group.updated as i64,
                        ":unchanged": group.unchanged as i64,
                    })?;
            }
            tx.commit()?;
            Ok(all)
        })
    }

    /// One commit's writes inside the caller's transaction.
    fn apply(&self, tx: &Connection, commit: &Commit, now: &str) -> rusqlite::Result<Committed> {
        let mut out = Committed::default();
        let stream = commit.stream;
        let release = |tx: &Connection, stream: &str, key: &str| -> rusqlite::Result<()> {
            tx.prepare_cached(statements::get("quarantine", "release"))?
                .execute(rusqlite::named_params! {":stream": stream, ":item_key": key})?;
            Ok(())
        };
        // A fan-out commit writes its parent only while the listing it fetched for still waits
        // in `staging`. A newer listing staged meanwhile is written in its own turn; one the
        // walk could not read dropped it (below), and the older copy must then neither
        // overwrite the stored row nor release the newer one from quarantine.
        if let Some(row) = &commit.unstage {
            let waiting =
                tx.prepare_cached(statements::get("staging", "done"))?
                    .execute(rusqlite::named_params! {
                        ":stream": stream,
                        ":item_key": row.item_key,
                        ":raw_json": row.raw_json,
                    })?;
            if waiting == 0 {
                return Ok(out);
            }
        }
        let quarantine_in_use = self.quarantine_in_use.load(std::sync::atomic::Ordering::Relaxed);
        for row in &commit.rows {
            out.counts.add(upsert(tx, row, now)?);
            if quarantine_in_use {
                release(tx, stream, &row.item_key)?;
            }
        }
        for row in &commit.stage {
            if unchanged(tx, row)? {
                out.counts.unchanged += 1;
            } else {
                tx.prepare_cached(statements::get("staging", "stage"))?
                    .execute(rusqlite::named_params! {
                        ":stream": stream,
                        ":item_key": row.item_key,
                        ":raw_json": row.raw_json,
                        ":now": now,
                    })?;
                out.staged += 1;
            }
        }
        for set in &commit.children {
            let mut counts = Counts::default();
            for row in &set.rows {
                counts.add(upsert(tx, row, now)?);
            }
            let sql = statements::get(set.table, "prune");
            let pruned = match &set.prune {
                Prune::BeyondPosition(n) => tx
                    .prepare_cached(sql)?
                    .execute(rusqlite::named_params! {":parent_id": set.parent_id, ":count": n})?,
                Prune::NotIn(ids) => {
                    let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
                    tx.prepare_cached(sql)?
                        .execute(rusqlite::named_params! {":parent_id": set.parent_id, ":ids": ids})?
                }
            };
            counts.removed += pruned as u64;
            match out.children.iter_mut().find(|(t, _)| *t == set.table) {
                Some((_, c)) => c.add(counts),
                None => out.children.push((set.table, counts)),
            }
            if quarantine_in_use {
                tx.prepare_cached(statements::get("quarantine", "release_children"))?
                    .execute(rusqlite::named_params! {
                        ":stream": set.table,
                        ":parent_id": set.parent_id,
                    })?;
            }
        }
        let all_quarantined = commit
            .quarantined
            .iter()
            .chain(commit.children.iter().flat_map(|c| &c.quarantined));
        for q in all_quarantined {
            let seen = tx
                .prepare_cached(statements::get("quarantine", "exists"))?
                .exists(rusqlite::named_params! {":stream": q.stream, ":item_key": q.key})?;
            tx.prepare_cached(statements::get("quarantine", "upsert"))?
                .execute(rusqlite::named_params! {
                    ":stream": q.stream,
                    ":item_key": q.key,
                    ":item_id": q.id,
                    ":parent_id": q.parent_id,
                    ":error": q.error,
                    ":raw_json": q.raw_json,
                    ":now": now,
                })?;
            if !seen {
                out.newly_quarantined.push(q.clone());
            }
            // An unreadable listing of a parent supersedes an older one waiting for its lists.
            if q.parent_id.is_none() && q.stream == stream {
                tx.prepare_cached(statements::get("staging", "drop"))?
                    .execute(rusqlite::named_params! {":stream": stream, ":item_key": q.key})?;
            }
            self.quarantine_in_use
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(since) = commit.sweep_quarantine_before
            && quarantine_in_use
        {
            tx.prepare_cached(statements::get("quarantine", "sweep"))?
                .execute(rusqlite::named_params! {":stream": stream, ":since": iso(since)})?;
        }
        if commit.reset_seen {
            tx.prepare_cached(statements::get("scan_seen", "reset"))?
                .execute(rusqlite::named_params! {":stream": stream})?;
        }
        if !commit.seen.is_empty() {
            let mut add = tx.prepare_cached(statements::get("scan_seen", "add"))?;
            for key in &commit.seen {
                add.execute(rusqlite::named_params! {":stream": stream, ":item_key": key})?;
            }
        }
        if let Some(r) = &commit.removals {
            let table = r.table;
            let json = |keys: &[String]| serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
            let n = tx
                .prepare_cached(statements::get(table, "confirm_removed"))?
                .execute(rusqlite::named_params! {":now": now, ":keys": json(&r.confirmed)})?;
            out.counts.removed += n as u64;
            // Tables whose rows may lack an id (legacy consents) count misses too.
            if counts_misses(table) {
                tx.prepare_cached(statements::get(table, "seen_again"))?
                    .execute(rusqlite::named_params! {":stream": stream})?;
                tx.prepare_cached(statements::get(table, "missed"))?
                    .execute(rusqlite::named_params! {":keys": json(&r.missed)})?;
                let n = tx
                    .prepare_cached(statements::get(table, "missed_twice"))?
                    .execute(rusqlite::named_params! {":now": now, ":keys": json(&r.missed)})?;
                out.counts.removed += n as u64;
            }
        }
        if let Some(cp) = &commit.checkpoint {
            checkpoint::save(tx, stream, cp, now)?;
        }
        Ok(out)
    }

    /// Up to `limit` staged parents of `stream`, oldest first, leaving out those in `busy`.
    pub fn staged(
        &self,
        stream: &str,
        busy: &[String],
        limit: usize,
    ) -> Result<Vec<(String, String)>, Error> {
        let busy = serde_json::to_string(busy).unwrap_or_else(|_| "[]".into());
        self.with(|c| {
            c.prepare_cached(statements::get("staging", "next"))?
                .query_map(
                    rusqlite::named_params! {":stream": stream, ":busy": busy, ":limit": limit as i64},
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .collect()
        })
    }

    /// Stages every stored `parent` row for a newly enabled per-parent stream `child`, once:
    /// `None` when the child has been set up before, else how many parents were staged.
    pub fn backfill(&self, parent: &str, child: &str, now: Timestamp) -> Result<Option<u64>, Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let known = tx
                .prepare_cached(statements::get("sync_state", "exists"))?
                .exists(rusqlite::named_params! {":stream": child})?;
            if known {
                return Ok(None);
            }
            let n = tx
                .prepare_cached(statements::get(parent, "stage_all"))?
                .execute(rusqlite::named_params! {":stream": parent, ":now": now})?;
            let done = Checkpoint {
                completed: true,
                ..Checkpoint::default()
            };
            checkpoint::save(&tx, child, &done, &now)?;
            tx.commit()?;
            Ok(Some(n as u64))
        })
    }

    /// Parents of `stream` waiting in `staging`.
    pub fn staged_count(&self, stream: &str) -> Result<u64, Error> {
        self.with(|c| {
            c.query_row(statements::get("staging", "count"), &[(":stream", stream)], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
        })
    }

    /// Drops a staged parent the API no longer has.
    pub fn unstage(&self, stream: &str, key: &str) -> Result<(), Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("staging", "drop"))?
                .execute(rusqlite::named_params! {":stream": stream, ":item_key": key})?;
            Ok(())
        })
    }

    /// After a complete scan of `stream`: its live rows the scan did not list, as (key, id).
    pub fn removal_candidates(&self, stream: &str) -> Result<Vec<(String, Option<String>)>, Error> {
        self.with(|c| {
            c.prepare_cached(statements::get(stream, "removal_candidates"))?
                .query_map(&[(":stream", stream)], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    /// Ids of the stream's quarantined items, to fetch again.
    pub fn quarantined_ids(&self, stream: &str) -> Result<Vec<String>, Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("quarantine", "ids"))?
                .query_map(&[(":stream", stream)], |r| r.get(0))?
                .collect()
        })
    }

    /// Takes an item out of quarantine (the API no longer has it).
    pub fn release_quarantine(&self, stream: &str, key: &str) -> Result<(), Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("quarantine", "release"))?
                .execute(rusqlite::named_params! {":stream": stream, ":item_key": key})?;
            Ok(())
        })
    }

    /// Items in quarantine now, over all streams.
    pub fn quarantine_count(&self) -> Result<u64, Error> {
        self.with(|c| {
            c.query_row(statements::get("quarantine", "count"), [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        })
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

    /// The pace the last run ended with, if any run saved one.
    pub fn load_pace(&self) -> Result<Option<crate::pace::Learned>, Error> {
        self.with(|c| {
            c.query_row(statements::get("pace_state", "load"), [], |r| {
                Ok(crate::pace::Learned {
                    rate: r.get(0)?,
                    ceiling: r.get(1)?,
                    concurrency: r.get::<_, i64>(2)?.max(1) as usize,
                })
            })
            .optional()
        })
    }

    pub fn save_pace(&self, learned: &crate::pace::Learned, now: Timestamp) -> Result<(), Error> {
        let now = iso(now);
        self.with(|c| {
            c.prepare_cached(statements::get("pace_state", "save"))?
                .execute(rusqlite::named_params! {
                    ":rate": learned.rate,
                    ":ceiling": learned.ceiling,
                    ":concurrency": learned.concurrency as i64,
                    ":now": now,
                })?;
            Ok(())
        })
    }

    /// When the last successful run ended, if any did.
    pub fn last_success(&self) -> Result<Option<String>, Error> {
        self.with(|c| c.query_row(statements::get("sync_runs", "last_success"), [], |r| r.get(0)))
    }

    /// Sets aside the secondary indexes of `table` for a first full load, if the table is empty:
    /// their definitions go to `deferred_indexes` and the indexes are dropped, in one
    /// transaction. An index on a key in random order costs a random B-tree write per row;
    /// rebuilt once at the end it is one sort (`sql/migrations/13-deferred-indexes`). With
    /// `keyless`, the table's key index (`<table>_key`, `sql/migrations/14-keyless-first-load`)
    /// goes too, and the load appends every listing: only for a table nothing looks up by key
    /// until the load completes (no per-parent stream reads it, no foreign key checks it).
    /// Returns how many were set aside.
    pub fn defer_indexes(&self, table: &str, keyless: bool, now: Timestamp) -> Result<usize, Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows: i64 = tx.query_row(statements::get(table, "count"), [], |r| r.get(0))?;
            if rows > 0 {
                return Ok(0);
            }
            let mut indexes = index_definitions(&tx, "of_table", table)?;
            if keyless {
                indexes.extend(index_definitions(&tx, "key_of_table", table)?);
            }
            for (name, sql) in &indexes {
                tx.execute(
                    statements::get("deferred_indexes", "remember"),
                    rusqlite::named_params! {":name": name, ":table": table, ":sql": sql, ":now": now},
                )?;
                let drop = statements::get("deferred_indexes", "drop")
                    .replace("{index}", &name.replace('"', "\"\""));
                tx.execute(&drop, [])?;
            }
            tx.commit()?;
            Ok(indexes.len())
        })
    }

    /// Whether a first load has set aside `table`'s key index: until it is rebuilt, an id may be
    /// stored more than once and a lookup by id scans the table.
    pub fn key_deferred(&self, table: &str) -> Result<bool, Error> {
        self.with(|c| {
            c.query_row(
                statements::get("deferred_indexes", "key_pending"),
                &[(":table", &table)],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
        })
    }

    /// Rebuilds the indexes `defer_indexes` set aside for `table`, in one transaction. A kill
    /// while it runs leaves them set aside, and the next run rebuilds them.
    pub fn restore_indexes(&self, table: &str) -> Result<Restored, Error> {
        self.with(|c| {
            // The index build sorts every key: in temporary files, not in memory (`open` keeps
            // temporary storage in memory for statement journals), or a million rows' keys
            // would triple the job's memory for the length of the sort. The sorter keeps as
            // much in memory as the page cache may hold: a small one for the build, so the peak
            // stays near the load's own.
            c.pragma_update(None, "temp_store", "FILE")?;
            c.pragma_update(None, "cache_size", -SORT_CACHE_KIB)?;
            c.execute_batch("PRAGMA shrink_memory")?;
            // Folding an id stored twice deletes the older copies, and SQLite refuses to delete
            // from a parent table (bookings, for its tickets and answers) whose key has no unique
            // index yet. Nothing can reference a copy: per-parent streams do not run while the
            // key is aside, and the id itself stays. The pragma cannot change inside the
            // transaction, so it is off around it.
            c.pragma_update(None, "foreign_keys", "OFF")?;
            // The load's own walk waits for the build (its catch-up pass follows it), so the
            // sorter may use the second core: a quarter less wall time at a million rows, for
            // a fifth more CPU and a worker's buffer of memory.
            c.pragma_update(None, "threads", SORT_THREADS)?;
            let built = build_deferred(c, table);
            c.pragma_update(None, "threads", 0)?;
            c.pragma_update(None, "foreign_keys", "ON")?;
            c.pragma_update(None, "cache_size", -CACHE_KIB)?;
            c.pragma_update(None, "temp_store", "MEMORY")?;
            built
        })
    }

    /// Tables with indexes set aside, and how many each.
    pub fn deferred_indexes(&self) -> Result<Vec<(String, i64)>, Error> {
        self.with(|c| deferred_tables(c))
    }

    /// Proves the database can be written, without changing it.
    pub fn check_writable(&self) -> Result<(), Error> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.rollback()
        })
    }

    /// Records a new run; runs still marked running were killed and become `abandoned`.
    pub fn start_run(&self, now: Timestamp) -> Result<i64, Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(statements::get("sync_runs", "abandon"))?
                .execute(rusqlite::named_params! {":now": now})?;
            tx.prepare_cached(statements::get("sync_runs", "start"))?
                .execute(rusqlite::named_params! {":now": now})?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            self.run.store(id, std::sync::atomic::Ordering::Relaxed);
            Ok(id)
        })
    }

    pub fn finish_run(&self, id: i64, params: &Params, now: Timestamp) -> Result<(), Error> {
        let now = Value::Text(iso(now));
        let id = Value::Integer(id);
        self.with(|c| {
            let mut all: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":now", &now), (":id", &id)];
            all.extend(params.iter().map(|(k, v)| (*k, v as &dyn rusqlite::ToSql)));
            c.prepare_cached(statements::get("sync_runs", "finish"))?
                .execute(all.as_slice())?;
            Ok(())
        })?;
        self.run.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The running run's requests so far, for `status` while it runs (rows are counted by the
    /// commits themselves).
    pub fn record_requests(
        &self,
        id: i64,
        requests: u64,
        retries: u64,
        rate_limited: u64,
    ) -> Result<(), Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("sync_runs", "requests"))?
                .execute(rusqlite::named_params! {
                    ":id": id,
                    ":requests": requests as i64,
                    ":retries": retries as i64,
                    ":rate_limited": rate_limited as i64,
                })?;
            Ok(())
        })
    }
}

/// The stored copy of `row`, if any: its `raw_json` and whether it is live (for staging, which
/// must know before it writes).
fn stored_copy(conn: &Connection, row: &Row) -> rusqlite::Result<Option<(String, bool)>> {
    let sql = statements::get(row.table, "lookup");
    let mut stmt = conn.prepare_cached(sql)?;
    bind::bind(&mut stmt, sql, row.record.as_ref(), &[], false)?;
    let mut rows = stmt.raw_query();
    match rows.next()? {
        Some(r) => Ok(Some((r.get(0)?, r.get(1)?))),
        None => Ok(None),
    }
}

/// True when the stored copy of `row` is identical and live.
fn unchanged(conn: &Connection, row: &Row) -> rusqlite::Result<bool> {
    Ok(matches!(stored_copy(conn, row)?, Some((raw, true)) if raw == row.raw_json))
}

/// `(name, sql)` of the indexes the `deferred_indexes` statement `statement` lists for `table`:
/// those it may set aside (`of_table`) or those it has (`pending`).
fn index_definitions(
    c: &Connection,
    statement: &str,
    table: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    c.prepare(statements::get("deferred_indexes", statement))?
        .query_map(&[(":table", &table)], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Tables with indexes set aside, and how many each.
fn deferred_tables(c: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    c.prepare(statements::get("deferred_indexes", "tables"))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// `Store::restore_indexes`'s transaction: every definition set aside for `table`, built, the
/// key first. A key whose build finds an id stored twice (a keyless load re-read it) has the
/// table's duplicates folded into their last listing, and is built again.
fn build_deferred(c: &mut Connection, table: &str) -> rusqlite::Result<Restored> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let pending = index_definitions(&tx, "pending", table)?;
    let key = format!("{table}_key");
    let mut folded = 0;
    for (name, sql) in &pending {
        match tx.execute(sql, []) {
            Err(e) if *name == key && is_unique_violation(&e) => {
                folded = dedupe(&tx, table)?;
                tx.execute(sql, [])?;
            }
            other => {
                other?;
            }
        }
    }
    tx.execute(
        statements::get("deferred_indexes", "forget"),
        &[(":table", &table)],
    )?;
    tx.commit()?;
    Ok(Restored {
        indexes: pending.len(),
        folded,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error().map(|f| f.extended_code),
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
    )
}

/// Folds each id `table` holds more than once into its last listing (`deferred_indexes.sql`,
/// "dedupe"); rows removed.
fn dedupe(tx: &Connection, table: &str) -> rusqlite::Result<usize> {
    let run = |name: &str| {
        let sql = statements::get("deferred_indexes", name).replace("{table}", table);
        tx.execute(&sql, [])
    };
    run("dedupe_index")?;
    run("dedupe_first_synced")?;
    let removed = run("dedupe")?;
    run("dedupe_index_drop")?;
    Ok(removed)
}

/// Inserts `row`, or updates the stored copy unless it is identical and live: an `insert` that
/// does nothing on conflict, then (only for a row already stored) an `update` whose `WHERE`
/// leaves an identical row alone. What each changed says which it was. (One upsert with
/// `RETURNING` would say so too, but makes SQLite keep a statement journal per row.) While a
/// keyless first load has the key set aside the `insert` always inserts.
fn upsert(conn: &Connection, row: &Row, now: &str) -> rusqlite::Result<Counts> {
    let mut counts = Counts::default();
    if write(conn, row, "insert", now)? > 0 {
        counts.inserted = 1;
    } else if write(conn, row, "update", now)? > 0 {
        counts.updated = 1;
    } else {
        counts.unchanged = 1;
    }
    Ok(counts)
}

/// Runs the statement `name` of the row's table with the row bound; the rows it changed.
fn write(conn: &Connection, row: &Row, name: &str, now: &str) -> rusqlite::Result<usize> {
    let sql = statements::get(row.table, name);
    let mut stmt = conn.prepare_cached(sql)?;
    bind::bind(
        &mut stmt,
        sql,
        row.record.as_ref(),
        &[(":raw_json", &row.raw_json), (":now", &now)],
        true,
    )?;
    stmt.raw_execute()
}
