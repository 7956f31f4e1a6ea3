//! Paths in the configuration: relative to the config file, and the files derived from the
//! database's (the token file beside it).

use std::path::{Path, PathBuf};

use super::raw::*;

/// `auth.token_file`, by default the database's path with `.refresh-token` added.
pub(super) fn token_file(auth: &RawAuth, database: &Path, base: Option<&Path>) -> PathBuf {
    match &auth.token_file {
        Some(p) => relative_to(base, p.clone()),
        None => {
            let mut name = database.as_os_str().to_owned();
            name.push(".refresh-token");
            PathBuf::from(name)
        }
    }
}

/// The directory `path` is in, as absolute as the file system lets us say.
pub(super) fn directory_of(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    dir.canonicalize()
        .or_else(|_| std::path::absolute(&dir))
        .unwrap_or(dir)
}

/// `path` as written in the config file at `base`: relative paths are relative to the file.
pub(super) fn relative_to(base: Option<&Path>, path: PathBuf) -> PathBuf {
    match base {
        Some(b) if path.is_relative() && !b.as_os_str().is_empty() => b.join(path),
        _ => path,
    }
}
