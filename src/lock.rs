//! One sync per database: an exclusive lock on `<database>.lock`.
//!
//! The lock is an OS file lock (`flock`), so the kernel drops it when its holder dies, however it
//! dies: a stale lock file from a killed process never blocks the next run. The holder's pid is
//! written into the file only to name it in the "busy" message.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("another understory-sync{} is syncing {db}; it holds {lock}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy {
        db: PathBuf,
        lock: PathBuf,
        pid: Option<u32>,
    },
    /// The OS error follows in the error's chain (`{:#}`), so the message does not repeat it.
    #[error("cannot open the lock file {lock}")]
    Io { lock: PathBuf, source: std::io::Error },
    #[error("the database's directory {dir} does not exist; create it, or change `database`")]
    NoDirectory { dir: PathBuf },
    /// The lock file or its directory is not open to the user the job runs as.
    #[error("cannot open the lock file {0}")]
    Access(String),
}

/// Held for as long as it lives.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// The lock file that guards `database`.
pub(crate) fn path_for(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    database.with_file_name(name)
}

/// Whether a process that took the lock of `database` is still alive, judged by the pid its
/// lock file names (the file is only read): `status` uses it to tell a run in progress from a
/// row left `running` by a process that was killed (out of memory, SIGKILL) or panicked while
/// its writer held the database. A pid reused since is taken for alive.
pub fn holder_alive(database: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path_for(database)) else {
        return false;
    };
    let Some(pid) = text
        .trim()
        .parse::<i32>()
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // Signal 0 only asks: delivered (alive), or refused for permission (alive, another user's).
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Takes the lock of `database` or says who holds it; never waits.
pub(crate) fn acquire(database: &Path) -> Result<Lock, Error> {
    if let Some(dir) = database
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
    {
        return Err(Error::NoDirectory { dir: dir.to_owned() });
    }
    let path = path_for(database);
    let io = |source| Error::Io {
        lock: path.clone(),
        source,
    };
    // Never through a symlink planted in its place, never a FIFO or a second name of another
    // file (the pid written below truncates it); group-readable like the database.
    let opened = crate::files::open_lock(&path, 0o640);
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::Access(crate::access::describe(&path, &e)));
        }
        Err(e) => return Err(io(e)),
    };
    let mut tries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io)?;
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                writeln!(file, "{}", std::process::id()).map_err(io)?;
                return Ok(Lock { _file: file });
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                let _ = file.read_to_string(&mut text);
                let pid: Option<u32> = text.trim().parse().ok();
                // Held by this very process after its own holder let go: a child forked meanwhile
                // (by any thread) shares the lock's open file until it execs. It is gone in
                // moments; another process's lock is refused at once.
                if pid == Some(std::process::id()) && tries < SELF_HELD_RETRIES {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                return Err(Error::Busy {
                    db: database.to_owned(),
                    lock: path.clone(),
                    pid,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
}

/// How often (10 ms apart) a lock that names this process as its holder is tried again.
const SELF_HELD_RETRIES: u32 = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_in_a_missing_directory_is_named_once() {
        let err = acquire(Path::new("/nonexistent-understory-dir/sync.sqlite")).unwrap_err();
        let shown = format!("{:#}", anyhow::Error::new(err));
        assert_eq!(
            shown,
            "the database's directory /nonexistent-understory-dir does not exist; create it, or change `database`"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        // The lock file cannot be created inside a regular file: the OS error appears once.
        let err = Error::Io {
            lock: file.join("x.lock"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let shown = format!("{:#}", anyhow::Error::new(err));
        assert_eq!(shown.matches("not found").count(), 1, "{shown}");
    }

    #[test]
    fn second_holder_is_refused_with_the_pid_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.sqlite");
        let held = acquire(&db).unwrap();
        assert_eq!(path_for(&db), dir.path().join("x.sqlite.lock"));
        assert!(path_for(&db).is_file());
        match acquire(&db) {
            Err(Error::Busy { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected busy, got {other:?}"),
        }
        drop(held);
        assert!(acquire(&db).is_ok());
    }
}
