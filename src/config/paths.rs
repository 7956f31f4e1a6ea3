//! Paths in the configuration: relative to the config file, the files derived from the
//! database's (the token file beside it), and the check that every file the job reads or
//! writes is its own.

use std::path::{Component, Path, PathBuf};

use super::error::{Error, invalid};
use super::raw::*;
use super::types::{AuthMethod, Config};

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

/// A key file (named by config key `key`) must not share a directory with what it seals or with
/// the database: a copy or backup of that directory would carry both. A systemd credential lives
/// in systemd's own directory and is not checked. `sealed` says what the key opens.
pub(super) fn key_kept_apart(
    key: &'static str,
    key_file: &Path,
    is_credential: bool,
    sealed: &str,
    beside: [(&str, &Path); 2],
) -> Result<(), Error> {
    if is_credential {
        return Ok(());
    }
    let key_dir = directory_of(key_file);
    for (what, path) in beside {
        let dir = directory_of(path);
        if key_dir == dir {
            return Err(invalid(
                key,
                format!(
                    "{} is in the same directory as {what} ({}): a copy or backup of it would hold {sealed} and its key; keep the key elsewhere, e.g. /etc/understory-sync/, or use a systemd credential",
                    key_file.display(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
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

/// The files beside the database that SQLite and the job keep: a write over any of them loses
/// committed pages or the single-instance guard.
const DATABASE_COMPANIONS: [(&str, &str); 5] = [
    ("", "the database"),
    ("-wal", "the database's -wal file"),
    ("-shm", "the database's -shm file"),
    ("-journal", "the database's -journal file"),
    (".lock", "the database's lock file"),
];

/// Links followed while resolving one path before giving up (Linux's own limit).
const MAX_LINKS: u32 = 40;

/// Every file the job reads or writes — the config file, the client secret file, the token key
/// file, the database and the files beside it, the token file, the snapshot, the metrics
/// textfile — is its own once links and `..` are resolved: a metrics textfile or snapshot
/// written over the database would replace it and exit 0. A clash names the later key of the
/// list (the one most likely mistyped) and the file it clashes with.
pub(super) fn distinct(
    config: &Config,
    file: Option<&Path>,
    secret_file: Option<&Path>,
) -> Result<(), Error> {
    let mut files: Vec<(&'static str, String, PathBuf)> = Vec::new();
    let mut add = |key: &'static str, what: &str, path: &Path| {
        files.push((key, what.to_owned(), resolved(path)));
    };
    if let Some(f) = file {
        add("--config", "the config file", f);
    }
    if let Some(f) = secret_file {
        add("auth.client_secret_file", "the client secret file", f);
    }
    let third_party = match &config.auth.method {
        AuthMethod::AuthorizationCode(tp) => Some(tp),
        AuthMethod::ClientCredentials => None,
    };
    if let Some(tp) = third_party {
        add("auth.token_key_file", "the token key file", &tp.token_key);
    }
    if let Some(w) = &config.webhooks
        && !w.key_is_credential
        && third_party.is_none_or(|tp| tp.token_key != w.key_file)
    {
        add("webhooks.key_file", "the webhook secrets' key file", &w.key_file);
    }
    for (suffix, what) in DATABASE_COMPANIONS {
        let mut name = config.database.as_os_str().to_owned();
        name.push(suffix);
        add("database", what, Path::new(&name));
    }
    if let Some(tp) = third_party {
        add("auth.token_file", "the token file", &tp.token_file);
    }
    if let Some(w) = &config.webhooks {
        add("webhooks.secret_file", "the webhook secrets file", &w.secret_file);
    }
    if let Some(s) = &config.snapshot {
        add("snapshot.path", "the snapshot", &s.path);
    }
    if let Some(m) = &config.metrics_textfile {
        add("metrics.textfile", "the metrics textfile", m);
    }
    for (i, (key, _, path)) in files.iter().enumerate() {
        let earlier = files[..i].iter().find(|(k, _, p)| k != key && p == path);
        if let Some((other, what, _)) = earlier {
            return Err(invalid(
                key,
                format!(
                    "{} is also {what} (`{other}`); every file the job reads or writes must be its own: name another file",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// `path` with links and `..` resolved as far as the file system lets us: a file that does not
/// exist yet is its resolved directory joined with its name, and a link to nowhere is where it
/// points.
pub(super) fn resolved(path: &Path) -> PathBuf {
    resolve(path, 0)
}

fn resolve(path: &Path, links: u32) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    if links < MAX_LINKS
        && let Ok(target) = std::fs::read_link(&absolute)
    {
        let parent = absolute.parent().unwrap_or(Path::new("/"));
        return resolve(&parent.join(target), links + 1);
    }
    match (absolute.parent(), absolute.components().next_back()) {
        (Some(dir), Some(Component::Normal(name))) => resolve(dir, links).join(name),
        (Some(dir), Some(Component::ParentDir)) => {
            let up = resolve(dir, links);
            up.parent().map_or(up.clone(), Path::to_owned)
        }
        (Some(dir), Some(Component::CurDir)) => resolve(dir, links),
        _ => absolute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_resolves_through_links_and_dots_whether_or_not_its_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("data")).unwrap();
        std::fs::write(real.join("data/u.sqlite"), "").unwrap();
        std::os::unix::fs::symlink(real.join("data"), real.join("link")).unwrap();
        std::os::unix::fs::symlink(real.join("data/u.sqlite"), real.join("u.prom")).unwrap();
        std::os::unix::fs::symlink(real.join("data/new.sqlite"), real.join("dangling")).unwrap();
        let db = real.join("data/u.sqlite");
        for spelled in [
            "data/u.sqlite",
            "link/u.sqlite",
            "data/../link/./u.sqlite",
            "u.prom",
            "link/../data/u.sqlite",
        ] {
            assert_eq!(resolved(&real.join(spelled)), db, "{spelled}");
        }
        let wal = real.join("data/u.sqlite-wal");
        for spelled in [
            "link/u.sqlite-wal",
            "nowhere/../data/u.sqlite-wal",
            "link/x/../u.sqlite-wal",
        ] {
            assert_eq!(resolved(&real.join(spelled)), wal, "{spelled}");
        }
        assert_eq!(resolved(&real.join("dangling")), real.join("data/new.sqlite"));
    }
}
