//! The refresh token of a third-party connection, encrypted at rest and always the newest one
//! received, as Understory's *Third-party integrations* guide asks (`docs/understory-api.md` §3).
//!
//! One small JSON file per connected customer. The token itself is sealed with
//! XChaCha20-Poly1305 under a 32-byte key that lives elsewhere: a systemd credential or a 0600
//! key file, never in the database's directory (config.rs refuses that), so a copy of the data
//! directory or a backup of it does not carry a usable token. The metadata (client, scope, when
//! the token was issued) stays readable, so `status` can say how old the token is without the
//! key, and it is the AEAD's associated data, so it cannot be altered without the file failing
//! to open. A random 24-byte nonce per write makes nonce reuse a non-issue.
//!
//! Writes go to a temporary file in the same directory, are fsynced, renamed over the old file
//! and the directory fsynced: a kill at any moment leaves either the old token or the new one,
//! never half of one. `lock` serialises refreshes between processes that share the file.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload, rand_core::RngCore};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Serialize};

/// The name of the file's format; a different one is refused rather than misread.
const FORMAT: &str = "understory-sync refresh token v1";
/// Refresh tokens live 30 days (Understory's *Third-party integrations* guide).
pub(crate) const REFRESH_TOKEN_LIFETIME_DAYS: i64 = 30;
/// A token older than this that has not been rotated is warned about: five days' notice.
pub(crate) const WARN_AFTER_DAYS: i64 = 25;

/// Why the token file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no refresh token is stored at {0}: run `understory-sync connect` first")]
    Missing(PathBuf),
    #[error("cannot read the token key {path}: {cause}")]
    KeyUnreadable { path: PathBuf, cause: String },
    #[error(
        "the token key {0} must hold 32 random bytes as 64 hex digits or base64 (e.g. `head -c 32 /dev/urandom | base64`)"
    )]
    KeyMalformed(PathBuf),
    #[error("the token key {0} can be read by other users: chmod 600 it")]
    KeyExposed(PathBuf),
    #[error(
        "the token file {0} cannot be opened with this key (a different key, or the file was altered); use the key it was written with, or re-run `understory-sync connect`"
    )]
    Undecryptable(PathBuf),
    #[error("the token file {path} is not a token file of this program: {cause}")]
    Malformed { path: PathBuf, cause: String },
    #[error("cannot write the token file {path}: {cause}")]
    Write { path: PathBuf, cause: String },
}

/// The 32-byte key; its `Debug` shows nothing of it.
pub struct Key(SecretBox<[u8; 32]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key([redacted])")
    }
}

/// Where a key file comes from, which decides who else may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFrom {
    /// `auth.token_key_file`: its owner alone may read it.
    File,
    /// A systemd credential: systemd copies it into a directory only the service can enter, and
    /// may show it group-readable (`0440`, the mask of the ACL it grants the service user), so
    /// group read is allowed; anything more is still refused.
    Credential,
}

impl KeyFrom {
    pub fn of(is_credential: bool) -> Self {
        if is_credential {
            Self::Credential
        } else {
            Self::File
        }
    }
}

impl Key {
    /// Reads a key file: 64 hex digits or base64 of 32 bytes, a trailing newline allowed. A file
    /// others can read is refused: the key is what keeps the token file useless to them.
    pub fn load(path: &Path, from: KeyFrom) -> Result<Self, Error> {
        let unreadable = |e: std::io::Error| Error::KeyUnreadable {
            path: path.to_owned(),
            cause: e.to_string(),
        };
        // Opened once, never through a link, and checked on the open file: a key another
        // local user owns (or could swap in) would let them read the token file.
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
            .open(path)
            .map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        let others = match from {
            KeyFrom::File => 0o077,
            KeyFrom::Credential => 0o037,
        };
        if meta.permissions().mode() & others != 0 {
            return Err(Error::KeyExposed(path.to_owned()));
        }
        let owner = std::os::unix::fs::MetadataExt::uid(&meta);
        if !meta.is_file() || (owner != 0 && owner != rustix::process::geteuid().as_raw()) {
            return Err(Error::KeyUnreadable {
                path: path.to_owned(),
                cause: format!(
                    "it must be a plain file owned by root or by {} (it is owned by uid {owner})",
                    crate::access::current_user()
                ),
            });
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).map_err(unreadable)?;
        let text = SecretString::from(text);
        let t = text.expose_secret().trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
        } else {
            B64.decode(t).ok()
        };
        let bytes: [u8; 32] = bytes
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::KeyMalformed(path.to_owned()))?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// Writes a new random key to `path` (which must not exist), readable by its owner only;
    /// a missing directory is created, for its owner only too.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let write = |e: std::io::Error| Error::Write {
            path: path.to_owned(),
            cause: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(write)?;
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(write)?;
        f.write_all(format!("{}\n", B64.encode(bytes)).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(write)?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// The key at `path`, created (random, 0600) when it is a missing file rather than a
    /// credential; `true` when it was created just now.
    pub fn load_or_create(path: &Path, is_credential: bool) -> Result<(Self, bool), Error> {
        if !is_credential && !path.exists() {
            return Ok((Self::create(path)?, true));
        }
        Ok((Self::load(path, KeyFrom::of(is_credential))?, false))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.expose_secret().into())
    }

    /// Seals `msg` bound to `aad` under a fresh random nonce: (nonce, ciphertext), both base64.
    /// `None` only if the AEAD fails, which it does not for messages of this size.
    pub(crate) fn seal(&self, msg: &[u8], aad: &[u8]) -> Option<(String, String)> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self.cipher().encrypt(&nonce, Payload { msg, aad }).ok()?;
        Some((B64.encode(nonce), B64.encode(sealed)))
    }

    /// Opens what `seal` made with the same `aad`; `None` for another key, another `aad`, or a
    /// file altered in any byte.
    pub fn open(&self, nonce: &str, ciphertext: &str, aad: &[u8]) -> Option<Vec<u8>> {
        let nonce = B64.decode(nonce).ok().filter(|n| n.len() == 24)?;
        let sealed = B64.decode(ciphertext).ok()?;
        self.cipher()
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &sealed, aad })
            .ok()
    }
}

/// What is known about the stored token without the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub client_id: String,
    /// The scopes the customer granted, as the token endpoint listed them.
    pub scope: String,
    /// When `connect` ran: the start of this chain of refresh tokens.
    pub connected_at: DateTime<Utc>,
    /// When the stored refresh token was received; its 30 days run from here.
    pub issued_at: DateTime<Utc>,
}

impl Info {
    /// Whole days since the stored token was issued.
    pub fn age_days(&self, now: DateTime<Utc>) -> i64 {
        (now - self.issued_at).num_days()
    }

    /// When the stored token stops working unless it is rotated before.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.issued_at + chrono::Duration::days(REFRESH_TOKEN_LIFETIME_DAYS)
    }

    /// Older than `WARN_AFTER_DAYS`: the next few runs must rotate it, or `connect` is due.
    pub fn is_aging(&self, now: DateTime<Utc>) -> bool {
        now - self.issued_at > chrono::Duration::days(WARN_AFTER_DAYS)
    }

    /// The associated data: every metadata field, so none can change unnoticed.
    fn aad(&self) -> Vec<u8> {
        let ts = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        format!(
            "{FORMAT}\n{}\n{}\n{}\n{}",
            self.client_id,
            self.scope,
            ts(&self.connected_at),
            ts(&self.issued_at)
        )
        .into_bytes()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File_ {
    format: String,
    #[serde(flatten)]
    info: Info,
    nonce: String,
    ciphertext: String,
}

/// The token file of one connection.
#[derive(Debug, Clone)]
pub struct Vault {
    path: PathBuf,
}

impl Vault {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata alone, without the key (for `status`); `None` when nothing is stored.
    pub fn info(&self) -> Result<Option<Info>, Error> {
        match self.read() {
            Ok(f) => Ok(Some(f.info)),
            Err(Error::Missing(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The stored refresh token and its metadata.
    pub fn load(&self, key: &Key) -> Result<(SecretString, Info), Error> {
        let file = self.read()?;
        let undecryptable = || Error::Undecryptable(self.path.clone());
        let plain = key
            .open(&file.nonce, &file.ciphertext, &file.info.aad())
            .ok_or_else(undecryptable)?;
        let token = String::from_utf8(plain).map_err(|_| undecryptable())?;
        Ok((SecretString::from(token), file.info))
    }

    /// Replaces the stored token, atomically and durably (see the module doc).
    pub fn save(&self, key: &Key, token: &SecretString, info: &Info) -> Result<(), Error> {
        let (nonce, ciphertext) = key
            .seal(token.expose_secret().as_bytes(), &info.aad())
            .ok_or_else(|| self.write_error("encryption failed"))?;
        let file = File_ {
            format: FORMAT.to_owned(),
            info: info.clone(),
            nonce,
            ciphertext,
        };
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| self.write_error(e))?;
        text.push(b'\n');
        // Before the first start of a systemd unit its StateDirectory may not exist yet; one
        // that exists must be ours and closed to others.
        create_private_dir(&self.dir())
            .and_then(|owner| crate::files::replace_owned(&self.path, &text, 0o600, owner))
            .map_err(|e| self.write_error(e))
    }

    /// Holds an exclusive lock on `<file>.lock` until the returned guard drops, so two processes
    /// sharing a connection never refresh with the same token (the second would be a reuse).
    pub async fn lock(&self) -> Result<File, Error> {
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        let path = PathBuf::from(name);
        let err = |e: std::io::Error| Error::Write {
            path: path.clone(),
            cause: e.to_string(),
        };
        let f = crate::files::open_lock(&path, 0o600).map_err(err)?;
        if let Some((uid, gid)) = service_owner(&self.dir()) {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(err)?;
        }
        tokio::task::spawn_blocking(move || f.lock().map(|()| f))
            .await
            .map_err(|e| self.write_error(e))?
            .map_err(err)
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    fn read(&self) -> Result<File_, Error> {
        let text = match crate::files::read_plain(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Missing(self.path.clone()));
            }
            Err(e) => {
                return Err(Error::Malformed {
                    path: self.path.clone(),
                    cause: e.to_string(),
                });
            }
        };
        let file: File_ = serde_json::from_slice(&text).map_err(|e| Error::Malformed {
            path: self.path.clone(),
            cause: e.to_string(),
        })?;
        if file.format != FORMAT {
            return Err(Error::Malformed {
                path: self.path.clone(),
                cause: format!("format '{}' is not '{FORMAT}'", file.format),
            });
        }
        Ok(file)
    }

    fn write_error(&self, cause: impl std::fmt::Display) -> Error {
        Error::Write {
            path: self.path.clone(),
            cause: cause.to_string(),
        }
    }
}

/// Creates `dir` for its owner only, if it does not exist yet. Parents it has to create are
/// made 0755 (before the umask), as `mkdir -p` would: `connect` run as root before the unit
/// ever ran must not leave `/var/lib/understory-sync` closed to the service and the analysts.
///
/// An existing `dir` must be this user's, or, for root, the service's own (re-running `connect`
/// as root after the unit ran): then its owner is returned, and the files written there are
/// given to it, or the service could no longer read its own token.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<Option<(u32, u32)>> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
    if let Ok(meta) = fs::symlink_metadata(dir) {
        // It holds a secret: it must be a directory nobody else may write into (where they
        // could swap the file for their own, or a link).
        let me = rustix::process::geteuid();
        let mine = meta.uid() == me.as_raw();
        if !meta.is_dir() || !(mine || me.is_root()) || meta.mode() & 0o022 != 0 {
            return Err(std::io::Error::other(format!(
                "{} must be a directory owned by {} that no one else can write to (mode {:04o}, owner uid {}); fix its owner and mode",
                dir.display(),
                crate::access::current_user(),
                meta.mode() & 0o7777,
                meta.uid()
            )));
        }
        return Ok(service_owner(dir));
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new().recursive(true).mode(0o755).create(parent)?;
    }
    fs::DirBuilder::new().mode(0o700).create(dir)?;
    Ok(None)
}

/// The owner of `dir` when this process is root and the directory is another user's: whom
/// the files root writes there must belong to.
fn service_owner(dir: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::geteuid();
    let meta = fs::symlink_metadata(dir).ok()?;
    (me.is_root() && meta.is_dir() && meta.uid() != me.as_raw()).then(|| (meta.uid(), meta.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_directory_others_can_write_to_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap();
        let open = root.path().join("shared");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = create_private_dir(&open).unwrap_err().to_string();
        assert!(
            err.contains("no one else can write to") && err.contains("mode 0777"),
            "{err}"
        );
        fs::set_permissions(&open, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(create_private_dir(&open).is_ok());
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        assert!(
            create_private_dir(&link).is_err(),
            "a link is not the directory itself"
        );
    }

    #[tokio::test]
    async fn root_writing_into_the_services_directory_leaves_its_files_to_the_service() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("acme");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(&dir, Some(64_123), Some(64_124)).unwrap();
        let key = Key::create(&root.path().join("key")).unwrap();
        let vault = Vault::new(dir.join("t.json"));
        vault
            .save(&key, &SecretString::from("rt".to_owned()), &info(Utc::now()))
            .unwrap();
        let lock = vault.lock().await.unwrap();
        drop(lock);
        for name in ["t.json", "t.json.lock"] {
            let meta = fs::metadata(dir.join(name)).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid(), meta.mode() & 0o777),
                (64_123, 64_124, 0o600),
                "{name}"
            );
        }
        // Still refused when others may write into it.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
        assert!(create_private_dir(&dir).is_err());
    }

    #[test]
    fn a_fifo_or_a_link_where_the_token_was_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::create(&dir.path().join("key")).unwrap();
        let elsewhere = Vault::new(dir.path().join("elsewhere.json"));
        elsewhere
            .save(&key, &SecretString::from("rt".to_owned()), &info(Utc::now()))
            .unwrap();
        let path = dir.path().join("t.json");
        let vault = Vault::new(path.clone());
        let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(made.success());
        assert!(matches!(vault.load(&key), Err(Error::Malformed { .. })), "a FIFO");
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), &path).unwrap();
        assert!(matches!(vault.load(&key), Err(Error::Malformed { .. })), "a link");
    }

    #[test]
    fn a_private_directory_leaves_the_parents_it_creates_open() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("var/lib/understory-sync/acme");
        create_private_dir(&dir).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        // 0755 less this process's umask: never closed to others the way 0700 would be.
        assert_eq!(mode(dir.parent().unwrap()) & 0o700, 0o700);
        assert_ne!(
            mode(dir.parent().unwrap()) & 0o055,
            0,
            "group and others may traverse"
        );
    }

    fn info(at: DateTime<Utc>) -> Info {
        Info {
            client_id: "app".into(),
            scope: "offline booking.read".into(),
            connected_at: at,
            issued_at: at,
        }
    }

    #[test]
    fn a_saved_token_opens_with_its_key_only_and_its_text_is_not_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::create(&dir.path().join("key")).unwrap();
        let other = Key::create(&dir.path().join("other")).unwrap();
        let vault = Vault::new(dir.path().join("t.json"));
        let token = SecretString::from("ory_rt_very-secret-refresh".to_owned());
        vault.save(&key, &token, &info(Utc::now())).unwrap();
        let text = fs::read_to_string(vault.path()).unwrap();
        assert!(!text.contains("very-secret"), "{text}");
        let mode = fs::metadata(vault.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(vault.load(&key).unwrap().0.expose_secret(), token.expose_secret());
        assert!(matches!(vault.load(&other), Err(Error::Undecryptable(_))));
    }

    #[test]
    fn altered_metadata_makes_the_file_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::create(&dir.path().join("key")).unwrap();
        let vault = Vault::new(dir.path().join("t.json"));
        let old = Utc::now() - chrono::Duration::days(29);
        vault
            .save(&key, &SecretString::from("rt".to_owned()), &info(old))
            .unwrap();
        let text = fs::read_to_string(vault.path()).unwrap();
        let year = old.format("%Y").to_string();
        let fresher = text.replacen(&format!("\"issued_at\": \"{year}"), "\"issued_at\": \"2999", 1);
        assert_ne!(text, fresher);
        fs::write(vault.path(), fresher).unwrap();
        assert!(matches!(vault.load(&key), Err(Error::Undecryptable(_))));
    }

    #[test]
    fn a_key_others_can_read_or_of_the_wrong_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, "c2hvcnQ=\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Key::load(&path, KeyFrom::File),
            Err(Error::KeyExposed(_))
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            Key::load(&path, KeyFrom::File),
            Err(Error::KeyMalformed(_))
        ));
        fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        assert!(Key::load(&path, KeyFrom::File).is_ok(), "hex is accepted");
        // A systemd credential may show group read (the mask of its ACL); a file may not, and
        // neither may be writable or readable by others.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o440)).unwrap();
        assert!(Key::load(&path, KeyFrom::Credential).is_ok());
        assert!(matches!(
            Key::load(&path, KeyFrom::File),
            Err(Error::KeyExposed(_))
        ));
        for mode in [0o460, 0o444] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            assert!(matches!(
                Key::load(&path, KeyFrom::Credential),
                Err(Error::KeyExposed(_))
            ));
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        // Another local user's key (where root can hand one over) is refused.
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&path, Some(64_123), None).unwrap();
            assert!(matches!(
                Key::load(&path, KeyFrom::File),
                Err(Error::KeyUnreadable { .. })
            ));
            std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        }
        let link = path.with_extension("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(Key::load(&link, KeyFrom::File).is_err(), "never through a link");
        assert_eq!(
            format!("{:?}", Key::load(&path, KeyFrom::File).unwrap()),
            "Key([redacted])"
        );
    }

    #[test]
    fn age_and_the_warning_threshold() {
        let now = Utc::now();
        assert!(!info(now - chrono::Duration::days(25)).is_aging(now));
        assert!(info(now - chrono::Duration::days(26)).is_aging(now));
        assert_eq!(info(now - chrono::Duration::days(3)).age_days(now), 3);
    }
}
