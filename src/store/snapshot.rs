//! The published snapshot: a consistent, read-only copy of the database for analysts who do
//! not read the live file.
//!
//! The live file is in WAL mode: a reader needs its `-wal` and `-shm` files, on the same
//! machine, and sees the job's writes as they commit. A copy made with `cp` or `rsync` while a
//! run writes can be torn. The snapshot is written by `VACUUM INTO` (one read transaction, so
//! it is one instant of the database) into a new file with a random name beside the target,
//! given its mode, fsynced, and renamed over the target: a reader opens either the whole old
//! copy or the whole new one. It is a single file in rollback-journal mode, so it can be
//! copied, served with `datasette --immutable`, or opened read-only from another machine.

use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::database::Store;
use super::error::Error;
use super::statements;

impl Store {
    /// Publishes a snapshot of the database at `to`, readable as `mode` says.
    pub(crate) fn publish_snapshot(&self, to: &Path, mode: u32) -> Result<(), Error> {
        let fail = |e: std::io::Error, path: &Path| Error::Access(crate::access::describe(path, &e));
        let dir = match to.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = to
            .file_name()
            .map_or_else(|| "snapshot".to_owned(), |n| n.to_string_lossy().into_owned());
        remove_stale(&dir, &name);
        crate::files::warn_if_directory_open_to_all(to, "the snapshot");
        // A new file of our own (O_EXCL, which also refuses a symlink planted at that name),
        // private until it is complete.
        let (tmp, _) = crate::files::create_beside(to, 0o600).map_err(|e| fail(e, to))?;
        let written = self.vacuum_into(&tmp, to).and_then(|()| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&tmp)
                .map_err(|e| fail(e, to))?;
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| fail(e, to))?;
            file.sync_all().map_err(|e| fail(e, to))?;
            std::fs::rename(&tmp, to).map_err(|e| fail(e, to))?;
            // The rename itself survives a crash once the directory is synced.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// `VACUUM INTO` the temporary file; errors name the snapshot's configured path `to`.
    fn vacuum_into(&self, tmp: &Path, to: &Path) -> Result<(), Error> {
        let target = tmp.to_string_lossy().into_owned();
        self.with(|c| {
            c.execute(statements::get("snapshot", "vacuum_into"), [&target])
                .map(|_| ())
        })
        .map_err(|e| match e {
            Error::Sqlite { message, .. } => classify_snapshot(to, message),
            other => other,
        })
    }
}

/// Removes temporary copies a killed publish left beside the snapshot (`.NAME.<hex>.tmp`), so
/// they cannot pile up, each the size of the database.
fn remove_stale(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let stale = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .is_some_and(|hex| hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A failed `VACUUM INTO` names the snapshot's path, not the live database's.
fn classify_snapshot(to: &Path, message: String) -> Error {
    Error::Sqlite {
        path: to.to_owned(),
        message: format!("writing the snapshot failed: {message}"),
    }
}
