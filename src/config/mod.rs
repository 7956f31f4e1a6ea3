//! Configuration: a TOML file through the `config` crate, every key overridable from the
//! environment, then validated into typed values before any work starts.
//!
//! Environment overrides use the prefix `UNDERSTORY_SYNC__` and `__` between levels, e.g.
//! `UNDERSTORY_SYNC__API__BASE_URL`. Credentials also come from `UNDERSTORY_CLIENT_ID`,
//! `UNDERSTORY_CLIENT_SECRET`, `auth.client_secret_file`, or systemd's `$CREDENTIALS_DIRECTORY`.

mod error;
mod paths;
pub(crate) mod raw;
mod read;
mod secret;
#[cfg(test)]
mod tests;
pub(crate) mod types;
mod validate;
mod webhooks;

pub use error::Error;
pub(crate) use raw::RawMethod;
pub use raw::{
    RawApi, RawAuth, RawConfig, RawMetrics, RawRetry, RawSnapshot, RawStreams, RawSync, RawWebhooks,
};
pub use types::{
    ApiConfig, AuthConfig, AuthMethod, Config, Environment, SyncConfig, ThirdParty, Webhooks, is_loopback,
};
pub(crate) use types::{RetryConfig, Snapshot};
pub use validate::validate;

use std::path::{Path, PathBuf};

use paths::{relative_to, token_file};
use read::{Readers, other_readers, read_raw};

/// Reads `path` (TOML) with environment overrides and validates it.
pub fn load(path: &Path, env: &Environment) -> Result<Config, Error> {
    let raw = read_raw(path, env)?;
    // Under the package the config's group is also the analysts' (it reads the database), so
    // a group-readable secret is one every analyst holds.
    if raw.auth.client_secret.is_some()
        && let Some(readers) = other_readers(path)
    {
        let readers = match readers {
            Readers::Everyone => "every user",
            Readers::Group => "its group (under the package: every analyst)",
        };
        tracing::warn!(
            path = %path.display(),
            "the config file holds auth.client_secret and {readers} can read it: chmod 600 it, or move the secret to auth.client_secret_file or a systemd credential"
        );
    }
    validate(raw, env, Some(path))
}

/// Only the database path of the config at `path`: what `status` needs, without credentials.
pub fn database_path(path: &Path, env: &Environment) -> Result<PathBuf, Error> {
    Ok(relative_to(path.parent(), read_raw(path, env)?.database))
}

/// The refresh-token file of a third-party connection, if the config at `path` has one; read
/// without credentials, for `status`.
pub fn token_file_path(path: &Path, env: &Environment) -> Result<Option<PathBuf>, Error> {
    let raw = read_raw(path, env)?;
    let database = relative_to(path.parent(), raw.database.clone());
    Ok((raw.auth.method == RawMethod::AuthorizationCode)
        .then(|| token_file(&raw.auth, &database, path.parent())))
}

/// The webhook secrets file of the config at `path`, if it has `[webhooks]`; read without
/// credentials, for `status`.
pub fn webhook_secrets_path(path: &Path, env: &Environment) -> Result<Option<PathBuf>, Error> {
    let raw = read_raw(path, env)?;
    let database = relative_to(path.parent(), raw.database.clone());
    Ok(raw
        .webhooks
        .as_ref()
        .map(|w| webhooks::secret_file(w, &database, path.parent())))
}
