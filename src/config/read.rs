//! Reading the file and the environment into a `RawConfig`: one-line errors that name the
//! key (and never repeat a value, which could be a secret), whole numbers where a count belongs.

use std::path::Path;

use super::error::{Error, invalid};
use super::raw::*;
use super::types::*;

/// The file's keys with the environment's `UNDERSTORY_SYNC__…` overrides on top; unknown keys
/// and wrongly typed values fail here, naming the key.
/// The config crate rounds `0.5` into an integer key without a word: refuse it by name, in the
/// file or in the environment variable that set it.
fn whole_numbers(as_written: &config::Config, merged: &config::Config) -> Result<(), Error> {
    for key in WHOLE_NUMBER_KEYS {
        if let Ok(v) = merged.get::<config::Value>(key)
            && matches!(v.kind, config::ValueKind::Float(_))
        {
            let written = as_written
                .get::<config::Value>(key)
                .is_ok_and(|w| matches!(w.kind, config::ValueKind::Float(_)));
            let message = format!("{v} is not a whole number; use an integer (at least 1 for a rate)");
            return Err(if written {
                invalid(key, message)
            } else {
                Error::Load(format!(
                    "environment variable {ENV_PREFIX}__{}: {message}",
                    key.replace('.', "__").to_uppercase()
                ))
            });
        }
    }
    Ok(())
}

/// The config file's text: it must exist, be readable by this user, and be UTF-8.
fn read_text(path: &Path) -> Result<String, Error> {
    match crate::access::exists(path) {
        Ok(true) => {}
        Ok(false) => {
            return Err(Error::Load(format!(
                "{} does not exist; copy the example config there and edit it (installed: /usr/share/doc/understory-sync/examples/understory-sync.toml; in the source: config/understory-sync.toml), or name another file with --config",
                path.display()
            )));
        }
        Err(e) => return Err(Error::Load(crate::access::describe(path, &e))),
    }
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            Error::Load(format!(
                "{} is not UTF-8 text; --config must name a TOML file",
                path.display()
            ))
        }),
        Err(e) => Err(Error::Load(match e.kind() {
            std::io::ErrorKind::PermissionDenied => crate::access::describe(path, &e),
            _ => format!(
                "{} cannot be read ({e}); --config must name a readable TOML file",
                path.display()
            ),
        })),
    }
}

pub(super) fn read_raw(path: &Path, env: &Environment) -> Result<RawConfig, Error> {
    let text = read_text(path)?;
    check_syntax(path, &text)?;
    let overrides = |vars: Vec<(String, String)>| {
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(vars.into_iter().collect()))
    };
    let file = config::File::from(path).format(config::FileFormat::Toml);
    let load = |e: config::ConfigError| {
        Error::Load(format!("{}: {}", path.display(), without_values(&e.to_string())))
    };
    // The file alone first: TOML says whether a value is a string, and the config crate would
    // otherwise turn `database = 5` into a file named "5". (Environment values are all strings.)
    let as_written = config::Config::builder()
        .add_source(file.clone())
        .build()
        .map_err(load)?;
    for key in PATH_KEYS {
        if let Ok(v) = as_written.get::<config::Value>(key)
            && !matches!(v.kind, config::ValueKind::String(_) | config::ValueKind::Nil)
        {
            return Err(invalid(key, format!("expected a path in quotes, got {v}")));
        }
    }
    let with = |vars: Vec<(String, String)>| {
        config::Config::builder()
            .add_source(file.clone())
            .add_source(overrides(vars))
            .build()
            .and_then(config::Config::try_deserialize::<RawConfig>)
    };
    let ours: Vec<(String, String)> = env
        .vars
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .cloned()
        .collect();
    let merged = config::Config::builder()
        .add_source(file.clone())
        .add_source(overrides(ours.clone()))
        .build()
        .map_err(load)?;
    whole_numbers(&as_written, &merged)?;
    with(ours.clone()).map_err(|e| {
        // The file alone is fine, so one of the overrides is wrong: name the variable, not the
        // file, which the operator would search in vain.
        if with(Vec::new()).is_err() {
            return load(e);
        }
        let culprit = ours
            .iter()
            .find_map(|var| with(vec![var.clone()]).err().map(|e| (&var.0, e)));
        match culprit {
            Some((name, e)) => Error::Load(format!(
                "environment variable {name}: {}; unset it or fix it (UNDERSTORY_SYNC__SECTION__KEY, e.g. UNDERSTORY_SYNC__API__BASE_URL)",
                without_values(&e.to_string())
            )),
            None => load(e),
        }
    })
}

/// A deserializer's message without the value it quotes (`invalid type: string "…"`): the value
/// may be a secret set in the wrong variable or key, and the message goes to the journal.
pub(super) fn without_values(message: &str) -> String {
    let mut out = message.to_owned();
    for marker in ["invalid type: ", "invalid value: "] {
        if let Some(start) = out.find(marker).map(|i| i + marker.len())
            && let Some(len) = out[start..].find(", expected")
        {
            let kind: String = out[start..start + len]
                .split(['"', '`', '\''])
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            out.replace_range(start..start + len, &kind);
        }
    }
    out
}

/// Keys that take a whole number.
pub(super) const WHOLE_NUMBER_KEYS: [&str; 21] = [
    "auth.renew_before_secs",
    "api.connect_timeout_secs",
    "api.request_timeout_secs",
    "api.requests_per_second",
    "api.max_requests_per_second",
    "api.burst",
    "api.max_concurrent",
    "api.page_size",
    "api.max_response_bytes",
    "retry.max_attempts",
    "retry.initial_backoff_ms",
    "retry.max_backoff_ms",
    "retry.rate_limited_wait_secs",
    "retry.max_retry_after_secs",
    "retry.run_budget",
    "sync.overlap_secs",
    "sync.cursor_ttl_secs",
    "sync.progress_secs",
    "sync.max_run_secs",
    "sync.max_clock_skew_secs",
    "sync.max_in_flight_bytes",
];

/// A TOML syntax error as one line: where (line and column, and the key when the line has
/// one) and what the parser expected. The line itself is not echoed: it may hold a secret.
pub(super) fn check_syntax(path: &Path, text: &str) -> Result<(), Error> {
    let Err(e) = toml::from_str::<toml::Table>(text) else {
        return Ok(());
    };
    let at = e.span().map_or(0, |s| s.start).min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let section = before
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.split(']').next()))
        .map(|s| format!("{}.", s.trim_matches(['[', ' '])))
        .unwrap_or_default();
    let key = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|k| format!(" (key `{section}{k}`)"))
        .unwrap_or_default();
    let what = e.message().replace('\n', " ");
    Err(Error::Load(format!(
        "{}: TOML syntax error at line {line}, column {column}{key}: {}",
        path.display(),
        what.trim()
    )))
}

/// Who besides its owner may read `path`, the widest first: every user, or its group.
pub(super) fn other_readers(path: &Path) -> Option<Readers> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    if mode & 0o004 != 0 {
        Some(Readers::Everyone)
    } else if mode & 0o040 != 0 {
        Some(Readers::Group)
    } else {
        None
    }
}

/// Readers of a file besides its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Readers {
    Everyone,
    Group,
}

/// Keys that hold a path: a number there is a mistake, not a file named "5".
pub(super) const PATH_KEYS: [&str; 6] = [
    "database",
    "snapshot.path",
    "metrics.textfile",
    "auth.client_secret_file",
    "auth.token_file",
    "auth.token_key_file",
];
