//! `[webhooks]`, checked: the receiver's socket and path, the timestamp tolerance, and where the
//! subscriptions' secrets and their key live.

use std::path::Path;
use std::time::Duration;

use super::error::{Error, invalid};
use super::paths::{key_kept_apart, relative_to};
use super::raw::RawWebhooks;
use super::types::{Environment, WEBHOOK_KEY_CREDENTIAL_NAME, Webhooks};

/// The longest `tolerance_secs`: an hour. Standard Webhooks suggests five minutes; a longer
/// window lets a captured delivery be replayed for longer (once it is pruned from the inbox).
const MAX_TOLERANCE_SECS: u64 = 3_600;

/// `webhooks.secret_file`, by default the database's path with `.webhook-secrets` added.
pub(super) fn secret_file(raw: &RawWebhooks, database: &Path, base: Option<&Path>) -> std::path::PathBuf {
    match &raw.secret_file {
        Some(p) => relative_to(base, p.clone()),
        None => {
            let mut name = database.as_os_str().to_owned();
            name.push(".webhook-secrets");
            name.into()
        }
    }
}

pub(super) fn webhooks(
    raw: &RawWebhooks,
    env: &Environment,
    base: Option<&Path>,
    database: &Path,
    token_key_file: Option<&Path>,
) -> Result<Webhooks, Error> {
    let listen = raw.listen.trim().parse::<std::net::SocketAddr>().map_err(|_| {
        invalid(
            "webhooks.listen",
            format!(
                "'{}' is not an address and port, e.g. \"127.0.0.1:8788\"",
                raw.listen
            ),
        )
    })?;
    let path = raw.path.trim();
    if !path.starts_with('/') || path.contains(['?', '#']) || path.chars().any(char::is_whitespace) {
        return Err(invalid(
            "webhooks.path",
            format!("'{path}' must be a URL path starting with '/', e.g. \"/webhooks\""),
        ));
    }
    if !(1..=MAX_TOLERANCE_SECS).contains(&raw.tolerance_secs) {
        return Err(invalid(
            "webhooks.tolerance_secs",
            format!(
                "{} must be 1 to {MAX_TOLERANCE_SECS} (300 is the usual)",
                raw.tolerance_secs
            ),
        ));
    }
    if !(1..=365).contains(&raw.keep_days) {
        return Err(invalid(
            "webhooks.keep_days",
            format!("{} must be 1 to 365", raw.keep_days),
        ));
    }
    let secret_file = secret_file(raw, database, base);
    let credential = env
        .get("CREDENTIALS_DIRECTORY")
        .map(|dir| Path::new(dir).join(WEBHOOK_KEY_CREDENTIAL_NAME))
        .filter(|p| p.exists());
    // The credential first: under the unit the key file is root's alone (`webhooks register`
    // reads it as root), and systemd hands the service its copy (`systemd/webhooks.conf`).
    let (key_file, key_is_credential) = match (credential, &raw.key_file, token_key_file) {
        (Some(c), _, _) => (c, true),
        (None, Some(p), _) => (relative_to(base, p.clone()), false),
        (None, None, Some(k)) => (k.to_owned(), false),
        (None, None, None) => {
            return Err(invalid(
                "webhooks.key_file",
                format!(
                    "missing: name a key file outside the database's directory (`webhooks register` creates it, mode 0600), or pass a systemd credential named {WEBHOOK_KEY_CREDENTIAL_NAME}"
                ),
            ));
        }
    };
    key_kept_apart(
        "webhooks.key_file",
        &key_file,
        key_is_credential,
        "the secrets",
        [("the database", database), ("webhooks.secret_file", &secret_file)],
    )?;
    Ok(Webhooks {
        listen,
        path: path.to_owned(),
        tolerance: Duration::from_secs(raw.tolerance_secs),
        secret_file,
        key_file,
        key_is_credential,
        keep: Duration::from_secs(raw.keep_days * 86_400),
    })
}
