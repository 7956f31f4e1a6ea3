//! The `refresh_token` grant (RFC 6749 §6) of a third-party connection, with rotation.
//!
//! Understory's auth server looks like Ory Hydra (`ory_rt_` tokens), which issues a new refresh
//! token on every refresh and treats a second use of a rotated one as theft: it revokes the
//! whole chain, and only `connect` (the customer's consent again) recovers. So the order here
//! is the point of this module: take the file lock, read the newest stored token, refresh,
//! **store the new refresh token durably, and only then** hand out the new access token. A kill
//! after the save loses nothing; the window in which a kill strands the connection is the one
//! fsync between the answer arriving and the file being renamed.

use crate::poison::Unpoisoned as _;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

use super::endpoint::{Endpoint, Issued};
use super::error::Error;
use super::token_vault::{Info, Key, KeyFrom, Vault};

/// The test hook for crash trials: `UNDERSTORY_SYNC_TEST_CRASH_AT=refresh-received` aborts the
/// process after a refresh answer arrives and before it is stored; `refresh-saved` right after
/// it is stored, before the access token is used.
#[cfg(feature = "test-hooks")]
const CRASH_HOOK: &str = "UNDERSTORY_SYNC_TEST_CRASH_AT";

#[cfg(feature = "test-hooks")]
fn crash_point(name: &str) {
    if std::env::var(CRASH_HOOK).is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

/// No crash point outside test builds (the `test-hooks` feature).
#[cfg(not(feature = "test-hooks"))]
fn crash_point(_name: &str) {}

/// A connection's refresh token, kept in its vault.
pub(crate) struct Refresher {
    pub(crate) client_id: String,
    pub(crate) secret: SecretString,
    pub(crate) vault: Vault,
    /// The key file: a systemd credential or `auth.token_key_file`.
    pub(crate) key: PathBuf,
    pub(crate) key_from: KeyFrom,
    /// The stored token's metadata as of the last read or write, for status and metrics.
    info: Mutex<Option<Info>>,
}

impl Refresher {
    pub(crate) fn new(
        client_id: String,
        secret: SecretString,
        vault: Vault,
        key: PathBuf,
        key_from: KeyFrom,
    ) -> Self {
        Self {
            client_id,
            secret,
            vault,
            key,
            key_from,
            info: Mutex::new(None),
        }
    }

    /// The stored token's metadata after the latest refresh, if one was done.
    pub(crate) fn info(&self) -> Option<Info> {
        self.info.locked().clone()
    }

    pub(crate) async fn fetch(&self, endpoint: &Endpoint) -> Result<Issued, Error> {
        let key = Key::load(&self.key, self.key_from)?;
        // Held until the new token is stored: another process sharing the file waits, then reads
        // the token this one stored, instead of reusing the one this one rotated.
        let _lock = self.vault.lock().await?;
        let (stored, info) = self.vault.load(&key)?;
        let issued = endpoint
            .request(
                "refresh_token",
                &[
                    ("refresh_token", stored.expose_secret()),
                    ("client_id", &self.client_id),
                    ("client_secret", self.secret.expose_secret()),
                ],
            )
            .await?;
        crash_point("refresh-received");
        let info = match &issued.refresh_token {
            Some(new) if new.expose_secret() != stored.expose_secret() => {
                let fresh = Info {
                    issued_at: Utc::now(),
                    scope: issued.scope.clone().unwrap_or(info.scope.clone()),
                    ..info
                };
                self.vault.save(&key, new, &fresh)?;
                tracing::info!(path = %self.vault.path().display(), "stored the rotated refresh token");
                fresh
            }
            // "A new refresh token *may* be issued" (`docs/understory-api.md` §3): without one
            // the old stays valid.
            _ => info,
        };
        crash_point("refresh-saved");
        *self.info.locked() = Some(info);
        Ok(issued)
    }
}
