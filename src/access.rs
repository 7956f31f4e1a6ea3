//! Why a path cannot be used, said the way an operator fixes it.
//!
//! The job runs as a service user (`understory-sync`, or whatever `User=` names) while the
//! operator installs files as root. A file it cannot read must be reported as *permission
//! denied*, with the path and the user it was denied to, not as "does not exist":
//! `Path::exists` answers false for both, and sends the operator the wrong way.

use std::io;
use std::path::Path;

/// Whether `path` exists, telling "not there" apart from "not allowed to look".
pub fn exists(path: &Path) -> io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// One line for an I/O failure on `path`: a permission problem names the user the job runs
/// as and what to change; anything else is the system's own words.
pub(crate) fn describe(path: &Path, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::PermissionDenied {
        format!(
            "{}: permission denied for {}: give that user access to the file and every directory above it (see docs/operations.md, \"Who can read what\")",
            path.display(),
            current_user()
        )
    } else {
        format!("{}: {e}", path.display())
    }
}

/// `user NAME (uid N, gid G)` for the effective user, from `/etc/passwd` where it is listed
/// (a systemd `DynamicUser=` is not, and is shown by number alone).
pub(crate) fn current_user() -> String {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    match user_name(uid) {
        Some(name) => format!("user {name} (uid {uid}, gid {gid})"),
        None => format!("uid {uid} (gid {gid})"),
    }
}

/// The name `/etc/passwd` gives `uid`, if any.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_denied_names_the_path_and_the_user() {
        let e = io::Error::from(io::ErrorKind::PermissionDenied);
        let line = describe(Path::new("/etc/x.toml"), &e);
        assert!(line.starts_with("/etc/x.toml: permission denied for "), "{line}");
        let uid = rustix::process::geteuid().as_raw();
        assert!(line.contains(&format!("uid {uid}")), "{line}");
    }

    #[test]
    fn a_missing_path_does_not_exist_and_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!exists(&dir.path().join("nope")).unwrap());
        assert!(exists(dir.path()).unwrap());
    }
}
