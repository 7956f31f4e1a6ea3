//! The client secret: from the config, a file, the environment or a systemd credential, in
//! that documented order; never echoed.

use std::path::Path;

use secrecy::SecretString;

use super::error::{Error, invalid};
use super::paths::relative_to;
use super::raw::*;
use super::read::{Readers, other_readers};
use super::types::*;

/// The client secret, from the first of: `UNDERSTORY_CLIENT_SECRET`, `auth.client_secret_file`,
/// `$CREDENTIALS_DIRECTORY/understory-client-secret`, `auth.client_secret`.
pub(super) fn secret(raw: &RawAuth, env: &Environment, base: Option<&Path>) -> Result<SecretString, Error> {
    if let Some(s) = env.get("UNDERSTORY_CLIENT_SECRET") {
        return Ok(SecretString::from(s.to_owned()));
    }
    let from_file = |key: &'static str, path: &Path| {
        if other_readers(path) == Some(Readers::Everyone) {
            tracing::warn!(
                path = %path.display(),
                "the client secret file can be read by every user: chmod 600 it"
            );
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
        // A trailing newline from `echo` or an editor is never part of the secret.
        let s = text.trim_end_matches(['\r', '\n']);
        if s.is_empty() {
            return Err(invalid(key, format!("{} is empty", path.display())));
        }
        Ok(SecretString::from(s.to_owned()))
    };
    if let Some(path) = &raw.client_secret_file {
        return from_file("auth.client_secret_file", &relative_to(base, path.clone()));
    }
    if let Some(dir) = env.get("CREDENTIALS_DIRECTORY") {
        let path = Path::new(dir).join(CREDENTIAL_NAME);
        if path.exists() {
            return from_file("auth.client_secret_file", &path);
        }
    }
    match &raw.client_secret {
        Some(s) if !secrecy::ExposeSecret::expose_secret(s).is_empty() => Ok(s.clone()),
        _ => Err(invalid(
            "auth.client_secret",
            "missing: set auth.client_secret_file, UNDERSTORY_CLIENT_SECRET, or a systemd credential named understory-client-secret",
        )),
    }
}
