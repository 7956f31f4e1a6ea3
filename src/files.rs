//! Files the job writes beside others' (the metrics textfile, the refresh-token file): whole
//! or not at all, and never through a link another local user planted.
//!
//! A fixed temporary name opened with create-and-truncate follows a symlink placed there in
//! advance, and, run as root, overwrites whatever it points at. So the temporary file gets a
//! random name and is created with `O_EXCL` (which refuses any existing name, a symlink
//! included), written, fsynced, and renamed over the target.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore as _;

/// Replaces `path` with `content`, atomically, the new file readable as `mode` says whatever
/// the umask.
pub fn replace(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    replace_owned(path, content, mode, None)
}

/// `replace`, the new file given to `owner` (uid, gid) before it takes the name: root writing
/// into the service's own directory leaves a file the service can still read.
pub(crate) fn replace_owned(
    path: &Path,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let (tmp, mut file) = create_beside(path, mode)?;
    let written = (|| {
        file.write_all(content)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A new, empty file with a random name beside `path` (`.NAME.<16 hex>.tmp`), created with
/// `O_EXCL` and `mode`.
pub(crate) fn create_beside(path: &Path, mode: u32) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path
        .file_name()
        .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", OsRng.next_u64()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    Ok((tmp, file))
}

/// Opens (creating if needed) a lock file at `path` without following a symlink there, and
/// only if it is a plain file with one name: a FIFO would block the open (it is opened
/// non-blocking), and a hard link to someone's file would be truncated by the pid written in.
pub(crate) fn open_lock(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.nlink() != 1 {
        return Err(std::io::Error::other(format!(
            "{} is not a plain file of its own (a FIFO, a device or a second name of another file); remove it",
            path.display()
        )));
    }
    Ok(file)
}

/// Warns, in one line naming it, when the directory `file` is in can be written by every user
/// of the machine: another user could then replace `what` or plant a file (a link, a `-wal`, a
/// lock) beside it before the job creates it, sticky bit or not.
pub(crate) fn warn_if_directory_open_to_all(file: &Path, what: &str) {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(meta) = std::fs::metadata(dir)
        && meta.permissions().mode() & 0o002 != 0
    {
        tracing::warn!(
            "every user of this machine can write to the directory {} holding {what}, and could replace it or plant files beside it: chmod o-w {}",
            dir.display(),
            dir.display()
        );
    }
}

/// The bytes of the plain file `path`, never read through a link (in a service's directory
/// the service itself could have put one there, and a root `connect` or `webhooks register`
/// may be the reader) nor from a FIFO, which would block the read for ever.
pub(crate) fn read_plain(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a plain file"));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("metrics.prom");
        // Every name a fixed-name writer could have used, and the target's lock.
        std::os::unix::fs::symlink(&victim, dir.path().join("metrics.prom.lock")).unwrap();
        assert!(open_lock(&dir.path().join("metrics.prom.lock"), 0o600).is_err());
        replace(&target, b"new", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
