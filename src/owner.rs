//! Who may write the database: a run as root over a database (or state directory) that belongs
//! to another user is refused before it writes a byte. Root would leave files the service user
//! cannot write, and publish the analysts' snapshot as `root:root`, locking them out until the
//! next service run; an operator typing `understory-sync sync` as root by mistake means to run
//! the service's job, as the service's user.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// Refused: root over another user's database.
#[derive(Debug, thiserror::Error)]
#[error(
    "running as root over {path}, which belongs to {owner}: files root writes there would lock that user (and the analysts reading the snapshot) out; run it as its owner: sudo -u {name} understory-sync …"
)]
pub struct ForeignOwner {
    pub(crate) path: String,
    pub(crate) owner: String,
    pub(crate) name: String,
}

/// `Err` when this process is root and the database — or, before it exists, the directory that
/// will hold it — belongs to another user.
pub fn check(database: &Path) -> Result<(), ForeignOwner> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let existing = if database.exists() {
        database
    } else {
        match database.parent() {
            Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
            Some(dir) => dir,
            None => return Ok(()),
        }
    };
    let Ok(meta) = std::fs::metadata(existing) else {
        return Ok(());
    };
    if meta.uid() == 0 {
        return Ok(());
    }
    let name = user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string());
    Err(ForeignOwner {
        path: crate::http::printable(&existing.display().to_string(), 200),
        owner: format!("{name} (uid {})", meta.uid()),
        name,
    })
}

/// The login name of `uid` in `/etc/passwd`, if it has one.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}
