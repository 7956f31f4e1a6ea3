//! Reading the database without writing a byte: what `status` (text and `--json`) reads
//! through. Nothing is created, migrated or changed: not the file, not its `-wal` or `-shm`.
//!
//! SQLite reads a WAL database only through its `-shm` file (the WAL's index), which it creates
//! when it is missing, even for a read-only connection. A reader who may not create files
//! beside the database (an analyst in the service's group) then gets "unable to open database
//! file". The files go missing when a read-write connection closes last (a plain
//! `sqlite3 FILE`): SQLite copies the WAL into the file and deletes both. With neither there
//! (or an empty `-wal`), the main file alone holds every commit, and it is read as an
//! `immutable` file, which needs neither; `read_whole_file` says why that read is never stale
//! or torn.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use rustix::fs::FlockOperation;

use super::error::Error;
use super::open::{BUSY_TIMEOUT, classify};
use super::ours;

/// Reads of the main file alone thrown away because a writer started meanwhile, before giving
/// up: after the first, the writer's `-shm` is there and SQLite's own read path is taken.
const ATTEMPTS: usize = 3;

/// The wait between tries for a read lock a writer holds (for up to `BUSY_TIMEOUT`).
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// Runs `read` on a read-only connection to the existing database at `path` and returns what
/// it read; never migrates, creates or writes anything (not even a `-shm` file).
pub(crate) fn read_only<T>(
    path: &Path,
    mut read: impl FnMut(&Connection) -> rusqlite::Result<T>,
) -> Result<T, Error> {
    ensure_readable(path)?;
    // Even a read-only connection writes read marks into another application's `-shm`.
    ours::check(path, usize::MAX)?;
    for _ in 0..ATTEMPTS {
        let beside = Beside::of(path)?;
        if !beside.main_file_is_whole() {
            return read_live(path, &beside, &mut read);
        }
        if let Some(value) = read_whole_file(path, &beside, &mut read)? {
            return Ok(value);
        }
    }
    Err(Error::Sqlite {
        path: path.to_owned(),
        message: "changed during every read (writers started and stopped); run again".into(),
    })
}

/// The file is there and this user may read it, each said as such rather than as SQLite's
/// "unable to open database file".
fn ensure_readable(path: &Path) -> Result<(), Error> {
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
    match File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(Error::Access(crate::access::describe(path, &e)))
        }
        _ => Ok(()),
    }
}

/// The files SQLite keeps beside the database, as far as a reader can tell from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Beside {
    /// The `-wal`'s size in bytes; None: no such file.
    wal: Option<u64>,
    shm: bool,
    journal: bool,
}

impl Beside {
    fn of(path: &Path) -> Result<Self, Error> {
        let size = |suffix: &str| {
            let file = beside(path, suffix);
            match std::fs::metadata(&file) {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::Access(crate::access::describe(&file, &e))),
            }
        };
        Ok(Self {
            wal: size("-wal")?,
            shm: size("-shm")?.is_some(),
            journal: size("-journal")?.is_some(),
        })
    }

    /// Whether the main file alone holds every commit: no WAL frame waits to be copied into it
    /// (no `-wal`, or an empty one), no rollback journal to be played back, and no `-shm`,
    /// which every connection in WAL mode keeps while it is open.
    fn main_file_is_whole(&self) -> bool {
        !self.shm && !self.journal && self.wal.unwrap_or(0) == 0
    }
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// SQLite's own read-only path: a connection that reads the WAL through the `-shm`, under
/// SQLite's locks.
fn read_live<T>(
    path: &Path,
    beside: &Beside,
    read: &mut impl FnMut(&Connection) -> rusqlite::Result<T>,
) -> Result<T, Error> {
    let fail = |e| unreadable(path, beside, e);
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    read(&conn).map_err(fail)
}

/// What a failed read means. SQLite says "unable to open database file" (or "attempt to write
/// a readonly database") when it cannot open or create the `-wal` or `-shm` beside the file.
fn unreadable(path: &Path, beside: &Beside, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly) if !beside.shm => Error::Sqlite {
            path: path.to_owned(),
            message: format!(
                "cannot be read: its -shm file is missing and this user may not create it ({e}), and {}; the job's next run recreates it",
                if beside.journal {
                    "a rollback journal (-journal) waits to be played back into the file"
                } else {
                    "its -wal holds commits not yet copied into the file"
                }
            ),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly) => Error::Sqlite {
            path: path.to_owned(),
            message: format!(
                "cannot be opened for reading ({e}): this user must be able to read the file, its -wal and its -shm"
            ),
        },
        _ => classify(path, e),
    }
}

/// Reads the main file alone (`ours::open_immutable`) when `before` says it holds every commit, or
/// returns None if a writer started during the read. `immutable` tells SQLite the file will
/// not change; this makes that true for the length of the read, and checks it:
///
/// * A read lock over the whole file (`fcntl`, the kind SQLite's own locks are) is held from
///   before the files beside it are first looked at until after they are looked at again.
///   Every way of changing the main file either needs a lock that conflicts with it or leaves
///   a file beside it that cannot go away while it is held: a rollback-journal writer (and a
///   WAL connection in exclusive locking mode) takes write locks, which are refused; a WAL
///   writer opens `-wal` and `-shm` before writing, and only a connection that gets the
///   EXCLUSIVE lock on closing deletes them, which is refused too. So a writer that started,
///   committed and even checkpointed into the file during the read leaves them there.
/// * When `-wal`, `-shm` and `-journal` are as they were, and the path still names the locked
///   file, nothing wrote the file during the read, and what was read is returned. Otherwise it
///   is thrown away and the caller chooses again: the writer's `-shm` is there by then, and
///   SQLite's own read path reads the WAL and the file consistently. So a read that overlapped
///   a writer is never returned, and a stale one neither (the file held every commit at the
///   first look, and none came during the read).
///
/// The lock belongs to the process, as POSIX record locks do, and closing any descriptor of
/// the file drops it: SQLite's connection is closed only after the second look (and a process
/// that holds its own connection to the file, with SQLite's locks, should not read this way).
/// A writer waits for the lock at most as long as the read takes: a rollback-journal one; the
/// job's WAL writes do not wait for it.
fn read_whole_file<T>(
    path: &Path,
    before: &Beside,
    read: &mut impl FnMut(&Connection) -> rusqlite::Result<T>,
) -> Result<Option<T>, Error> {
    let locked = File::open(path).map_err(|e| Error::Access(crate::access::describe(path, &e)))?;
    lock_shared(&locked, path)?;
    let same_file = || -> Result<bool, Error> {
        let held = locked
            .metadata()
            .map_err(|e| Error::Access(crate::access::describe(path, &e)))?;
        Ok(std::fs::metadata(path).is_ok_and(|now| (now.dev(), now.ino()) == (held.dev(), held.ino())))
    };
    if Beside::of(path)? != *before || !same_file()? {
        return Ok(None);
    }
    let conn = ours::open_immutable(path).map_err(|e| classify(path, e))?;
    let read = read(&conn);
    let unchanged = Beside::of(path)? == *before && same_file()?;
    drop(conn);
    drop(locked);
    match read {
        // What a writer may have torn, a value or an error, is thrown away alike.
        _ if !unchanged => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(e) => Err(classify(path, e)),
    }
}

/// Takes a shared `fcntl` lock over the whole file, waiting up to `BUSY_TIMEOUT` while a
/// writer holds a conflicting one.
fn lock_shared(file: &File, path: &Path) -> Result<(), Error> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match rustix::fs::fcntl_lock(file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => return Ok(()),
            Err(e)
                if (e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(LOCK_RETRY);
            }
            Err(e) => {
                return Err(Error::Sqlite {
                    path: path.to_owned(),
                    message: format!("is locked by a writer ({e}); run again when it is done"),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL database with one row, closed as a plain `sqlite3 FILE` closes it: checkpointed,
    /// its `-wal` and `-shm` deleted.
    fn whole_file(dir: &Path) -> PathBuf {
        let path = dir.join("db.sqlite");
        #[allow(clippy::disallowed_methods)] // a foreign connection, as an operator's shell
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        c.pragma_update(None, "application_id", ours::APPLICATION_ID)
            .unwrap();
        drop(c);
        assert!(!beside(&path, "-wal").exists() && !beside(&path, "-shm").exists());
        path
    }

    fn count(c: &Connection) -> rusqlite::Result<i64> {
        c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
    }

    #[test]
    fn a_file_without_its_wal_and_shm_is_read_whole_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = whole_file(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        let n = read_whole_file(&path, &Beside::of(&path).unwrap(), &mut count).unwrap();
        assert_eq!(n, Some(1));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no file beside it"
        );
    }

    #[test]
    fn a_read_of_the_file_alone_that_a_writer_overlapped_is_thrown_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = whole_file(dir.path());
        let before = Beside::of(&path).unwrap();
        let mut writer = None;
        let mut read_while_writing = |c: &Connection| {
            let n = count(c)?;
            // A writer starts mid-read and commits to its WAL (a checkpoint would write the
            // file under the read); it stays open, as the job's connection does during a run.
            #[allow(clippy::disallowed_methods)]
            let w = Connection::open(&path).unwrap();
            w.execute("INSERT INTO t VALUES (2)", []).unwrap();
            writer = Some(w);
            Ok(n)
        };
        assert_eq!(
            read_whole_file(&path, &before, &mut read_while_writing).unwrap(),
            None
        );
        // The next read sees the writer's `-shm` and reads through it: the new row included.
        assert_eq!(read_only(&path, count).unwrap(), 2);
        drop(writer);
    }
}
