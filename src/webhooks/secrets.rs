//! The signing secrets of this receiver's subscriptions, sealed at rest like the refresh token
//! (`auth::token_vault`): XChaCha20-Poly1305 under the key of `webhooks.key_file` or a systemd
//! credential, never in the database, the logs or the metrics.
//!
//! Understory sends a subscription's secret once, in the answer that creates it, so `webhooks
//! register` writes it here before it prints anything: a lost secret means registering again.
//! One file holds every subscription's, because the receiver accepts a signature by any of
//! them (a rotation runs an old and a new subscription side by side). Each secret is sealed
//! with its subscription's id and URL as associated data, so an entry cannot be moved to another
//! subscription without failing to open.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::signature::SigningKey;
use crate::auth::token_vault::{Key, create_private_dir};

const FORMAT: &str = "understory-sync webhook secrets v1";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the webhook secrets file {path}: {cause}")]
    Read { path: PathBuf, cause: String },
    #[error("cannot write the webhook secrets file {path}: {cause}")]
    Write { path: PathBuf, cause: String },
    #[error(
        "the webhook secret of subscription {id} in {path} cannot be opened with this key (another key, or the file was altered); use the key it was written with, or register again"
    )]
    Undecryptable { path: PathBuf, id: String },
    #[error("the webhook secret of subscription {0} is not a `whsec_` base64 secret")]
    NotASecret(String),
}

/// One subscription as stored: what `webhooks list` shows without the key, and its sealed secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub url: String,
    pub registered_at: DateTime<Utc>,
    nonce: String,
    ciphertext: String,
}

impl Entry {
    fn aad(id: &str, url: &str) -> Vec<u8> {
        format!("{FORMAT}\n{id}\n{url}").into_bytes()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    format: String,
    subscriptions: Vec<Entry>,
}

/// The secrets file of one receiver.
#[derive(Debug, Clone)]
pub struct Secrets {
    path: PathBuf,
}

impl Secrets {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The stored subscriptions, without opening their secrets; none when there is no file.
    pub fn entries(&self) -> Result<Vec<Entry>, Error> {
        let read_error = |cause: String| Error::Read {
            path: self.path.clone(),
            cause,
        };
        let text = match crate::files::read_plain(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(read_error(e.to_string())),
        };
        let file: File = serde_json::from_slice(&text).map_err(|e| read_error(e.to_string()))?;
        if file.format != FORMAT {
            return Err(read_error(format!("format '{}' is not '{FORMAT}'", file.format)));
        }
        Ok(file.subscriptions)
    }

    /// Every stored secret as a signing key.
    pub(crate) fn keys(&self, key: &Key) -> Result<Vec<SigningKey>, Error> {
        self.entries()?
            .iter()
            .map(|e| {
                let plain = key
                    .open(&e.nonce, &e.ciphertext, &Entry::aad(&e.id, &e.url))
                    .and_then(|p| String::from_utf8(p).ok())
                    .ok_or_else(|| Error::Undecryptable {
                        path: self.path.clone(),
                        id: e.id.clone(),
                    })?;
                SigningKey::from_secret(&SecretString::from(plain))
                    .ok_or_else(|| Error::NotASecret(e.id.clone()))
            })
            .collect()
    }

    /// Stores the secret of subscription `id` (replacing one stored for the same id), durably
    /// and atomically, readable by its owner only.
    pub fn add(
        &self,
        key: &Key,
        id: &str,
        url: &str,
        secret: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if SigningKey::from_secret(secret).is_none() {
            return Err(Error::NotASecret(id.to_owned()));
        }
        let (nonce, ciphertext) = key
            .seal(secret.expose_secret().as_bytes(), &Entry::aad(id, url))
            .ok_or_else(|| self.write_error("encryption failed"))?;
        let mut entries = self.entries()?;
        entries.retain(|e| e.id != id);
        entries.push(Entry {
            id: id.to_owned(),
            url: url.to_owned(),
            registered_at: now,
            nonce,
            ciphertext,
        });
        self.write(entries)
    }

    /// Forgets the secret of subscription `id`; true if one was stored.
    pub fn remove(&self, id: &str) -> Result<bool, Error> {
        let mut entries = self.entries()?;
        let before = entries.len();
        entries.retain(|e| e.id != id);
        if entries.len() == before {
            return Ok(false);
        }
        self.write(entries)?;
        Ok(true)
    }

    fn write(&self, subscriptions: Vec<Entry>) -> Result<(), Error> {
        let file = File {
            format: FORMAT.to_owned(),
            subscriptions,
        };
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| self.write_error(e))?;
        text.push(b'\n');
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        create_private_dir(&dir)
            .and_then(|owner| crate::files::replace_owned(&self.path, &text, 0o600, owner))
            .map_err(|e| self.write_error(e))
    }

    fn write_error(&self, cause: impl std::fmt::Display) -> Error {
        Error::Write {
            path: self.path.clone(),
            cause: cause.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn a_stored_secret_is_sealed_and_opens_only_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::create(&dir.path().join("keys/k")).unwrap();
        let other = Key::create(&dir.path().join("keys/o")).unwrap();
        let s = Secrets::new(dir.path().join("state/db.webhook-secrets"));
        let plain = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        s.add(
            &key,
            "sub_1",
            "https://x.example/webhooks",
            &secret(plain),
            Utc::now(),
        )
        .unwrap();
        let text = std::fs::read_to_string(s.path()).unwrap();
        assert!(!text.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{text}");
        assert_eq!(s.keys(&key).unwrap().len(), 1);
        assert!(matches!(s.keys(&other), Err(Error::Undecryptable { .. })));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn an_entry_moved_to_another_subscription_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::create(&dir.path().join("k")).unwrap();
        let s = Secrets::new(dir.path().join("s"));
        s.add(
            &key,
            "sub_1",
            "https://x.example/a",
            &secret("whsec_AAAA"),
            Utc::now(),
        )
        .unwrap();
        let text = std::fs::read_to_string(s.path())
            .unwrap()
            .replace("sub_1", "sub_2");
        std::fs::write(s.path(), text).unwrap();
        assert!(matches!(s.keys(&key), Err(Error::Undecryptable { .. })));
    }

    #[test]
    fn adding_again_replaces_and_removing_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::create(&dir.path().join("k")).unwrap();
        let s = Secrets::new(dir.path().join("s"));
        assert!(s.entries().unwrap().is_empty());
        s.add(&key, "a", "https://x/a", &secret("whsec_AAAA"), Utc::now())
            .unwrap();
        s.add(&key, "b", "https://x/b", &secret("whsec_BBBB"), Utc::now())
            .unwrap();
        s.add(&key, "a", "https://x/a", &secret("whsec_CCCC"), Utc::now())
            .unwrap();
        assert_eq!(s.entries().unwrap().len(), 2);
        assert!(s.remove("a").unwrap());
        assert!(!s.remove("a").unwrap());
        assert_eq!(
            s.entries()
                .unwrap()
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert!(matches!(
            s.add(&key, "c", "https://x/c", &secret("not base64 !"), Utc::now()),
            Err(Error::NotASecret(_))
        ));
    }
}
