//! Opening the file to write it: the only place that does (`read_only` reads it). Pragmas,
//! migrations, the file mode analysts depend on, and what a failure to open means.

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use include_dir::{Dir, include_dir};
use rusqlite::{Connection, ErrorCode};
use rusqlite_migration::Migrations;

use super::error::Error;
use super::ours;

static MIGRATIONS_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/sql/migrations");

pub(super) static MIGRATIONS: LazyLock<Result<Migrations<'static>, String>> =
    LazyLock::new(|| Migrations::from_directory(&MIGRATIONS_DIR).map_err(|e| e.to_string()));

/// The page cache, KiB.
pub(super) const CACHE_KIB: i64 = 8 * 1024;

/// The page size of a new database, bytes: SQLite's default, chosen by measurement. 16 KiB pages
/// fill an empty bookings table about a third faster (a dozen 1 KiB rows a page, fewer splits),
/// but past a few hundred thousand rows every group dirties leaf pages all over the two
/// randomly keyed indexes (`id`, `event_id`), each dirty page is written whole to the WAL, and
/// 16 KiB pages fall behind: 10,000 against 12,400 rows/s by a million rows (BENCHMARKS.md).
/// A long-lived database spends its life in the second regime.
const PAGE_SIZE: i64 = 4 * 1024;

/// WAL bytes between automatic checkpoints (SQLite counts them in pages of the database's size).
const WAL_AUTOCHECKPOINT_BYTES: i64 = 40 * 1024 * 1024;

/// The WAL file is truncated to this after a checkpoint (bytes).
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How long a write waits for an analyst's lock before failing.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

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
    crate::files::warn_if_directory_open_to_all(path, "the database");
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

pub(super) fn classify(path: &Path, e: rusqlite::Error) -> Error {
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
