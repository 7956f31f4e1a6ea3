//! Configuration: a TOML file through the `config` crate, every key overridable from the
//! environment, then validated into typed values before any work starts.
//!
//! Environment overrides use the prefix `UNDERSTORY_SYNC__` and `__` between levels, e.g.
//! `UNDERSTORY_SYNC__API__BASE_URL`. Credentials also come from `UNDERSTORY_CLIENT_ID`,
//! `UNDERSTORY_CLIENT_SECRET`, `auth.client_secret_file`, or systemd's `$CREDENTIALS_DIRECTORY`.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::streams::{self, Stream};

/// Understory's production endpoints (`understory-api.md` §1, §3).
pub const DEFAULT_BASE_URL: &str = "https://api.understory.io";
pub const DEFAULT_TOKEN_URL: &str = "https://api.auth.understory.io/oauth2/token";
pub const DEFAULT_AUDIENCE: &str = "https://api.understory.io";
/// The authorization endpoint of third-party integrations (seed 003).
pub const DEFAULT_AUTHORIZE_URL: &str = "https://api.auth.understory.io/oauth2/auth";
/// The file name looked up in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
pub const CREDENTIAL_NAME: &str = "understory-client-secret";
/// The credential that holds the key of the refresh-token file.
pub const KEY_CREDENTIAL_NAME: &str = "understory-token-key";
const ENV_PREFIX: &str = "UNDERSTORY_SYNC";
/// The largest response body read, decoded: some fifty times the largest page the docs allow
/// (100 items), so a real answer never comes near it and a hostile one cannot take the memory.
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// A run's wall-clock ceiling by default: a first load of a large account takes hours at the
/// API's pace; the oneshot units' `TimeoutStartSec=` is a little longer.
const DEFAULT_MAX_RUN_SECS: u64 = 6 * 3600;
/// The docs ask clients to back off "for at least one minute" after a 429 (§4).
const MIN_RATE_LIMITED_WAIT_SECS: u64 = 60;

/// True for an API on this machine (the sandbox), where shorter 429 waits make tests practical.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A configuration problem, naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Load(String),
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid {
        key,
        message: message.into(),
    }
}

// ---- raw, as written -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub database: PathBuf,
    pub schedule: Option<String>,
    pub auth: RawAuth,
    pub api: RawApi,
    pub retry: RawRetry,
    pub sync: RawSync,
    pub streams: RawStreams,
    pub metrics: RawMetrics,
    pub snapshot: RawSnapshot,
}

/// Optional read-only copy of the database, published after each successful run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSnapshot {
    pub path: Option<PathBuf>,
    /// Octal, as `chmod` takes it.
    pub mode: String,
}

impl Default for RawSnapshot {
    fn default() -> Self {
        Self {
            path: None,
            mode: "0640".to_owned(),
        }
    }
}

/// Optional Prometheus textfile, rewritten after each run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetrics {
    pub textfile: Option<PathBuf>,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            database: PathBuf::from("understory.sqlite"),
            schedule: None,
            auth: RawAuth::default(),
            api: RawApi::default(),
            retry: RawRetry::default(),
            sync: RawSync::default(),
            streams: RawStreams::default(),
            metrics: RawMetrics::default(),
            snapshot: RawSnapshot::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    pub token_url: String,
    pub audience: String,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    pub renew_before_secs: u64,
    pub method: RawMethod,
    pub authorize_url: String,
    pub redirect_uri: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_key_file: Option<PathBuf>,
    pub pkce: bool,
}

/// `auth.method`: which grant issues the access tokens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawMethod {
    #[default]
    ClientCredentials,
    AuthorizationCode,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            renew_before_secs: 120,
            method: RawMethod::ClientCredentials,
            authorize_url: DEFAULT_AUTHORIZE_URL.to_owned(),
            redirect_uri: None,
            token_file: None,
            token_key_file: None,
            pkce: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApi {
    pub base_url: String,
    pub user_agent: String,
    pub accept_language: String,
    pub connect_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub requests_per_second: u32,
    pub max_requests_per_second: u32,
    pub burst: u32,
    pub max_concurrent: u32,
    pub page_size: u32,
    pub max_response_bytes: u64,
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            user_agent: format!("understory-sync/{}", env!("CARGO_PKG_VERSION")),
            accept_language: "en".to_owned(),
            connect_timeout_secs: 10,
            request_timeout_secs: 60,
            requests_per_second: 5,
            max_requests_per_second: 50,
            burst: 10,
            max_concurrent: 4,
            page_size: 100,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetry {
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub rate_limited_wait_secs: u64,
    pub max_retry_after_secs: u64,
    pub run_budget: u32,
}

impl Default for RawRetry {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            rate_limited_wait_secs: 60,
            max_retry_after_secs: 600,
            run_budget: 200,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSync {
    pub overlap_secs: u64,
    pub cursor_ttl_secs: u64,
    pub progress_secs: u64,
    pub max_run_secs: u64,
}

impl Default for RawSync {
    fn default() -> Self {
        Self {
            overlap_secs: 300,
            cursor_ttl_secs: 300,
            progress_secs: 30,
            max_run_secs: DEFAULT_MAX_RUN_SECS,
        }
    }
}

/// `[streams]`: a stream's name and whether it runs. A stream not named runs if it is on by
/// default (`streams::Stream::enabled_by_default`); a name no stream has is an error.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(transparent)]
pub struct RawStreams(pub BTreeMap<String, bool>);

impl RawStreams {
    /// Turns the stream `name` on or off.
    pub fn set(&mut self, name: &str, on: bool) {
        self.0.insert(name.to_owned(), on);
    }

    /// Exactly the named streams, every other off.
    pub fn only(names: &[&str]) -> Self {
        Self(
            streams::ALL
                .iter()
                .map(|s| (s.name.to_owned(), names.contains(&s.name)))
                .collect(),
        )
    }
}

// ---- validated ---------------------------------------------------------------------------

/// The validated configuration the job runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: PathBuf,
    /// For `run`; validated at load so a bad expression fails before anything starts.
    pub schedule: Option<cron::Schedule>,
    pub auth: AuthConfig,
    pub api: ApiConfig,
    pub retry: RetryConfig,
    pub sync: SyncConfig,
    pub streams: Vec<&'static Stream>,
    pub metrics_textfile: Option<PathBuf>,
    pub snapshot: Option<Snapshot>,
}

/// `[snapshot]`: where a consistent, read-only copy of the database is published after each
/// successful run (for analysts elsewhere, `datasette --immutable`, rsync), and its mode.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub path: PathBuf,
    pub mode: u32,
}

impl Config {
    /// The OAuth scopes the enabled streams need, each once, in stream order.
    pub fn scopes(&self) -> Vec<&'static str> {
        let mut scopes: Vec<&'static str> = Vec::new();
        for s in &self.streams {
            if !scopes.contains(&s.scope) {
                scopes.push(s.scope);
            }
        }
        scopes
    }
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub token_url: Url,
    pub audience: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Renew this long before `expires_in` runs out (at most half the lifetime).
    pub renew_before: Duration,
    pub method: AuthMethod,
}

/// Which grant issues the access tokens.
#[derive(Debug, Clone)]
pub enum AuthMethod {
    /// An internal integration key: `client_id` and secret are enough.
    ClientCredentials,
    /// A third-party app connected to one customer by `understory-sync connect`.
    AuthorizationCode(Box<ThirdParty>),
}

/// Where a third-party connection is made and kept.
#[derive(Debug, Clone)]
pub struct ThirdParty {
    pub authorize_url: Url,
    /// A loopback address registered for the client: `connect` listens there for the redirect.
    pub redirect_uri: Url,
    /// The refresh token, encrypted (auth::token_vault).
    pub token_file: PathBuf,
    /// The key of `token_file`: `auth.token_key_file` or the systemd credential.
    pub token_key: PathBuf,
    /// True when the key is a systemd credential, which `connect` must not try to create.
    pub key_is_credential: bool,
    /// Send a PKCE challenge (RFC 7636) with the authorize request.
    pub pkce: bool,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub base_url: Url,
    pub user_agent: String,
    pub accept_language: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// The pace of a first run; later runs start at the pace the previous one learned.
    pub requests_per_second: NonZeroU32,
    /// The pace never grows beyond this, whatever the API tolerates.
    pub max_requests_per_second: NonZeroU32,
    pub burst: NonZeroU32,
    /// Requests in flight at once: the start and the ceiling of the adaptive cap.
    pub max_concurrent: usize,
    pub page_size: u32,
    /// A response body is read up to this many bytes, decoded, and refused past it.
    pub max_response_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Tries of one request, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a 429 without `Retry-After` pauses every stream: the docs ask for at least a
    /// minute (§4); shorter only for an API on loopback (the sandbox).
    pub rate_limited_wait: Duration,
    /// A `Retry-After` longer than this is capped to it, so a bad header cannot stall a run.
    pub max_retry_after: Duration,
    /// Retries allowed in one run over all requests, so a dead API ends the run.
    pub run_budget: u32,
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// How far below the high-water mark an incremental pass keeps reading.
    pub overlap: Duration,
    /// A checkpointed cursor older than this is not used to resume (§1.1: "short-lived").
    pub cursor_ttl: Duration,
    /// How often a run without a terminal logs each stream's progress (`None`: never).
    pub progress_interval: Option<Duration>,
    /// A run stops itself after this long, as on SIGTERM (the next run resumes): a server
    /// that keeps handing out new pages cannot hold it, or its timer, for ever.
    pub max_run: Duration,
}

/// Where credentials may come from besides the file, injectable for tests.
#[derive(Debug, Default, Clone)]
pub struct Environment {
    pub vars: Vec<(String, String)>,
}

impl Environment {
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Reads `path` (TOML) with environment overrides and validates it.
pub fn load(path: &Path, env: &Environment) -> Result<Config, Error> {
    let raw = read_raw(path, env)?;
    if raw.auth.client_secret.is_some() && readable_by_others(path) {
        tracing::warn!(
            path = %path.display(),
            "the config file holds auth.client_secret and every user can read it: chmod 600 it, or move the secret to auth.client_secret_file or a systemd credential"
        );
    }
    validate(raw, env, path.parent())
}

/// True when users other than the owner (and its group) may read `path`.
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

/// Keys that hold a path: a number there is a mistake, not a file named "5".
const PATH_KEYS: [&str; 6] = [
    "database",
    "snapshot.path",
    "metrics.textfile",
    "auth.client_secret_file",
    "auth.token_file",
    "auth.token_key_file",
];

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

/// `auth.token_file`, by default the database's path with `.refresh-token` added.
fn token_file(auth: &RawAuth, database: &Path, base: Option<&Path>) -> PathBuf {
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
fn directory_of(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    dir.canonicalize()
        .or_else(|_| std::path::absolute(&dir))
        .unwrap_or(dir)
}

/// The third-party settings of `auth.method = "authorization_code"`.
fn third_party(
    raw: &RawAuth,
    env: &Environment,
    base: Option<&Path>,
    database: &Path,
    url: impl Fn(&'static str, &str) -> Result<Url, Error> + Copy,
) -> Result<ThirdParty, Error> {
    let authorize_url = url("auth.authorize_url", &raw.authorize_url)?;
    let example = "e.g. http://127.0.0.1:8976/callback, registered for the client";
    let redirect = raw
        .redirect_uri
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            invalid(
                "auth.redirect_uri",
                format!("missing: set the redirect URI {example}"),
            )
        })?;
    let redirect_uri = Url::parse(redirect)
        .map_err(|e| invalid("auth.redirect_uri", format!("'{redirect}' is not a URL: {e}")))?;
    if redirect_uri.scheme() != "http" || !is_loopback(&redirect_uri) || redirect_uri.port().is_none() {
        return Err(invalid(
            "auth.redirect_uri",
            format!(
                "'{redirect}' must be http on a loopback address with a port ({example}): connect listens there for the browser's redirect"
            ),
        ));
    }
    let token_file = token_file(raw, database, base);
    let (token_key, key_is_credential) = match (&raw.token_key_file, env.get("CREDENTIALS_DIRECTORY")) {
        (Some(p), _) => (relative_to(base, p.clone()), false),
        (None, Some(dir)) if Path::new(dir).join(KEY_CREDENTIAL_NAME).exists() => {
            (Path::new(dir).join(KEY_CREDENTIAL_NAME), true)
        }
        _ => {
            return Err(invalid(
                "auth.token_key_file",
                format!(
                    "missing: name a key file outside the database's directory (connect creates it, mode 0600), or pass a systemd credential named {KEY_CREDENTIAL_NAME}"
                ),
            ));
        }
    };
    // A copy of the data directory must not carry both the sealed token and its key.
    let key_dir = directory_of(&token_key);
    for (what, dir) in [
        ("the database", directory_of(database)),
        ("auth.token_file", directory_of(&token_file)),
    ] {
        if !key_is_credential && key_dir == dir {
            return Err(invalid(
                "auth.token_key_file",
                format!(
                    "{} is in the same directory as {what} ({}): a copy or backup of it would hold the token and its key; keep the key elsewhere, e.g. /etc/understory-sync/, or use a systemd credential",
                    token_key.display(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(ThirdParty {
        authorize_url,
        redirect_uri,
        token_file,
        token_key,
        key_is_credential,
        pkce: raw.pkce,
    })
}

/// The file's keys with the environment's `UNDERSTORY_SYNC__…` overrides on top; unknown keys
/// and wrongly typed values fail here, naming the key.
fn read_raw(path: &Path, env: &Environment) -> Result<RawConfig, Error> {
    match crate::access::exists(path) {
        Ok(true) => {}
        Ok(false) => {
            return Err(Error::Load(format!(
                "{} does not exist; copy config/understory-sync.toml there and edit it, or name another file with --config",
                path.display()
            )));
        }
        Err(e) => return Err(Error::Load(crate::access::describe(path, &e))),
    }
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            Error::Load(format!(
                "{} is not UTF-8 text; --config must name a TOML file",
                path.display()
            ))
        })?,
        Err(e) => {
            return Err(Error::Load(match e.kind() {
                std::io::ErrorKind::PermissionDenied => crate::access::describe(path, &e),
                _ => format!(
                    "{} cannot be read ({e}); --config must name a readable TOML file",
                    path.display()
                ),
            }));
        }
    };
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
    // The config crate rounds `0.5` into an integer key without a word: refuse it by name.
    let merged = config::Config::builder()
        .add_source(file.clone())
        .add_source(overrides(ours.clone()))
        .build()
        .map_err(load)?;
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
fn without_values(message: &str) -> String {
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
const WHOLE_NUMBER_KEYS: [&str; 19] = [
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
];

/// A TOML syntax error as one line: where (line and column, and the key when the line has
/// one) and what the parser expected. The line itself is not echoed: it may hold a secret.
fn check_syntax(path: &Path, text: &str) -> Result<(), Error> {
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

/// `path` as written in the config file at `base`: relative paths are relative to the file.
fn relative_to(base: Option<&Path>, path: PathBuf) -> PathBuf {
    match base {
        Some(b) if path.is_relative() && !b.as_os_str().is_empty() => b.join(path),
        _ => path,
    }
}

/// Turns a raw configuration into typed values; relative paths resolve against `base`.
pub fn validate(raw: RawConfig, env: &Environment, base: Option<&Path>) -> Result<Config, Error> {
    let url = |key: &'static str, s: &str| {
        let u = Url::parse(s).map_err(|e| invalid(key, format!("'{s}' is not a URL: {e}")))?;
        match u.scheme() {
            "https" => Ok(u),
            // The client secret and every token would cross the network in clear.
            "http" if is_loopback(&u) => Ok(u),
            "http" => Err(invalid(
                key,
                format!(
                    "'{s}' is plain http: the client secret and tokens would travel in clear; use https:// (http is allowed only on loopback, e.g. the sandbox)"
                ),
            )),
            other => Err(invalid(key, format!("scheme '{other}' is not http(s)"))),
        }
    };
    let positive =
        |key: &'static str, n: u32| NonZeroU32::new(n).ok_or_else(|| invalid(key, "must be at least 1"));
    let token_url = url("auth.token_url", &raw.auth.token_url)?;
    let mut base_url = url("api.base_url", &raw.api.base_url)?;
    if !base_url.path().ends_with('/') {
        let p = format!("{}/", base_url.path());
        base_url.set_path(&p);
    }
    let client_secret = secret(&raw.auth, env, base)?;
    let client_id = env
        .get("UNDERSTORY_CLIENT_ID")
        .map(str::to_owned)
        .or(raw.auth.client_id.clone().filter(|s| !s.is_empty()))
        .ok_or_else(|| {
            invalid(
                "auth.client_id",
                "missing: set it in the config file or UNDERSTORY_CLIENT_ID",
            )
        })?;
    if !(1..=100).contains(&raw.api.page_size) {
        return Err(invalid(
            "api.page_size",
            "must be between 1 and 100 (the API's limit)",
        ));
    }
    if raw.sync.max_run_secs < 60 {
        return Err(invalid(
            "sync.max_run_secs",
            "must be at least 60: a run that stops sooner may never finish a first load",
        ));
    }
    if raw.retry.max_attempts == 0 {
        return Err(invalid("retry.max_attempts", "must be at least 1"));
    }
    if raw.api.user_agent.trim().is_empty() {
        return Err(invalid(
            "api.user_agent",
            "must not be empty: Understory may require it",
        ));
    }
    if raw.api.accept_language.trim().is_empty() {
        return Err(invalid(
            "api.accept_language",
            "must not be empty: experiences require it",
        ));
    }
    if raw.retry.rate_limited_wait_secs < MIN_RATE_LIMITED_WAIT_SECS && !is_loopback(&base_url) {
        return Err(invalid(
            "retry.rate_limited_wait_secs",
            format!(
                "must be at least {MIN_RATE_LIMITED_WAIT_SECS}: Understory asks clients to back off for a minute after a 429 (shorter waits are allowed only for an API on loopback)"
            ),
        ));
    }
    if raw.retry.rate_limited_wait_secs == 0 {
        return Err(invalid("retry.rate_limited_wait_secs", "must be at least 1"));
    }
    if raw.retry.max_retry_after_secs < raw.retry.rate_limited_wait_secs {
        return Err(invalid(
            "retry.max_retry_after_secs",
            "must be at least retry.rate_limited_wait_secs",
        ));
    }
    let requests_per_second = positive("api.requests_per_second", raw.api.requests_per_second)?;
    let max_requests_per_second = positive("api.max_requests_per_second", raw.api.max_requests_per_second)?;
    if requests_per_second > max_requests_per_second {
        return Err(invalid(
            "api.requests_per_second",
            format!("{requests_per_second} is above api.max_requests_per_second ({max_requests_per_second})"),
        ));
    }
    if let Some(unknown) = raw.streams.0.keys().find(|k| streams::by_name(k).is_none()) {
        let known: Vec<&str> = streams::ALL.iter().map(|s| s.name).collect();
        return Err(invalid(
            "streams",
            format!(
                "there is no stream `{unknown}`; the streams are {}",
                known.join(", ")
            ),
        ));
    }
    // `ALL` lists parents first, so a per-parent stream the config does not name can follow its
    // parent: `orders = false` alone turns the order line items off too.
    let mut streams: Vec<&'static Stream> = Vec::new();
    for s in streams::ALL.iter().copied() {
        let default = s.enabled_by_default && s.parent().is_none_or(|p| streams.contains(&p));
        if raw.streams.0.get(s.name).copied().unwrap_or(default) {
            streams.push(s);
        }
    }
    if streams.is_empty() {
        return Err(invalid("streams", "no stream is enabled"));
    }
    if let Some((child, parent)) = streams
        .iter()
        .find_map(|s| s.parent().filter(|p| !streams.contains(p)).map(|p| (s, p)))
    {
        return Err(invalid(
            "streams",
            format!(
                "`{1}` is fetched per item of `{0}`, which is off; set {0} = true, or {1} = false",
                parent.name, child.name
            ),
        ));
    }
    let database = relative_to(base, raw.database);
    let method = match raw.auth.method {
        RawMethod::ClientCredentials => AuthMethod::ClientCredentials,
        RawMethod::AuthorizationCode => {
            AuthMethod::AuthorizationCode(Box::new(third_party(&raw.auth, env, base, &database, url)?))
        }
    };
    let snapshot = snapshot(&raw.snapshot, base, &database)?;
    let schedule = match raw.schedule.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(expr) => Some(
            crate::schedule::parse(expr)
                .map_err(|e| invalid("schedule", format!("'{}': {}", e.expr, e.why)))?,
        ),
        None => None,
    };
    Ok(Config {
        database,
        schedule,
        auth: AuthConfig {
            token_url,
            audience: raw.auth.audience,
            client_id,
            client_secret,
            renew_before: Duration::from_secs(raw.auth.renew_before_secs),
            method,
        },
        api: ApiConfig {
            base_url,
            user_agent: raw.api.user_agent,
            accept_language: raw.api.accept_language,
            connect_timeout: Duration::from_secs(raw.api.connect_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(raw.api.request_timeout_secs.max(1)),
            requests_per_second,
            max_requests_per_second,
            burst: positive("api.burst", raw.api.burst)?,
            max_concurrent: positive("api.max_concurrent", raw.api.max_concurrent)?.get() as usize,
            page_size: raw.api.page_size,
            max_response_bytes: usize::try_from(raw.api.max_response_bytes)
                .unwrap_or(usize::MAX)
                .max(64 * 1024),
        },
        retry: RetryConfig {
            max_attempts: raw.retry.max_attempts,
            initial_backoff: Duration::from_millis(raw.retry.initial_backoff_ms),
            max_backoff: Duration::from_millis(raw.retry.max_backoff_ms.max(raw.retry.initial_backoff_ms)),
            rate_limited_wait: Duration::from_secs(raw.retry.rate_limited_wait_secs),
            max_retry_after: Duration::from_secs(raw.retry.max_retry_after_secs),
            run_budget: raw.retry.run_budget,
        },
        sync: SyncConfig {
            overlap: Duration::from_secs(raw.sync.overlap_secs),
            cursor_ttl: Duration::from_secs(raw.sync.cursor_ttl_secs),
            progress_interval: (raw.sync.progress_secs > 0)
                .then(|| Duration::from_secs(raw.sync.progress_secs)),
            max_run: Duration::from_secs(raw.sync.max_run_secs),
        },
        streams,
        metrics_textfile: raw.metrics.textfile.map(|p| relative_to(base, p)),
        snapshot,
    })
}

/// `[snapshot]`, checked: a mode `chmod` would take that nobody else may write, and a path
/// that is not the live database.
fn snapshot(raw: &RawSnapshot, base: Option<&Path>, database: &Path) -> Result<Option<Snapshot>, Error> {
    let Some(path) = raw.path.clone().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(None);
    };
    let path = relative_to(base, path);
    let mode = u32::from_str_radix(raw.mode.trim().trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            invalid(
                "snapshot.mode",
                format!("'{}' is not an octal file mode, e.g. \"0640\"", raw.mode),
            )
        })?;
    if mode & 0o022 != 0 {
        return Err(invalid(
            "snapshot.mode",
            format!(
                "{mode:04o} lets others change the copy analysts trust; drop the write bits of group and others, e.g. \"0640\" or \"0644\""
            ),
        ));
    }
    if mode & 0o400 == 0 {
        return Err(invalid(
            "snapshot.mode",
            format!("{mode:04o} leaves the owner unable to read the copy; e.g. \"0640\""),
        ));
    }
    // The database and the files beside it that it needs (a rename over the `-wal` would
    // lose committed pages), however the path is spelled.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let db = database
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let taken = ["", "-wal", "-shm", "-journal", ".lock", ".refresh-token"].map(|s| format!("{db}{s}"));
    if directory_of(&path) == directory_of(database) && taken.contains(&name) {
        return Err(invalid(
            "snapshot.path",
            format!(
                "{} is the database or a file it needs; name another file, e.g. {db}.snapshot.sqlite",
                path.display()
            ),
        ));
    }
    Ok(Some(Snapshot { path, mode }))
}

/// The client secret, from the first of: `UNDERSTORY_CLIENT_SECRET`, `auth.client_secret_file`,
/// `$CREDENTIALS_DIRECTORY/understory-client-secret`, `auth.client_secret`.
fn secret(raw: &RawAuth, env: &Environment, base: Option<&Path>) -> Result<SecretString, Error> {
    if let Some(s) = env.get("UNDERSTORY_CLIENT_SECRET") {
        return Ok(SecretString::from(s.to_owned()));
    }
    let from_file = |key: &'static str, path: &Path| {
        if readable_by_others(path) {
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn raw(secret: Option<&str>, file: Option<PathBuf>) -> RawConfig {
        let mut r = RawConfig::default();
        r.auth.client_id = Some("id".into());
        r.auth.client_secret = secret.map(|s| SecretString::from(s.to_owned()));
        r.auth.client_secret_file = file;
        r
    }

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment {
            vars: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn secret_of(r: RawConfig, e: &Environment) -> String {
        validate(r, e, None)
            .unwrap()
            .auth
            .client_secret
            .expose_secret()
            .to_owned()
    }

    #[test]
    fn the_secret_comes_from_env_then_file_then_systemd_credentials_then_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        std::fs::write(dir.path().join(CREDENTIAL_NAME), "from-credentials\n").unwrap();
        let creds = env(&[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())]);

        let with_env = env(&[
            ("UNDERSTORY_CLIENT_SECRET", "from-env"),
            ("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap()),
        ]);
        assert_eq!(
            secret_of(raw(Some("cfg"), Some(file.clone())), &with_env),
            "from-env"
        );
        assert_eq!(
            secret_of(raw(Some("cfg"), Some(file.clone())), &creds),
            "from-file",
            "trailing newline dropped"
        );
        assert_eq!(secret_of(raw(Some("cfg"), None), &creds), "from-credentials");
        assert_eq!(secret_of(raw(Some("cfg"), None), &env(&[])), "cfg");
        let err = validate(raw(None, None), &env(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth.client_secret") && err.contains("UNDERSTORY_CLIENT_SECRET"),
            "{err}"
        );
        let err = validate(raw(None, Some(dir.path().join("missing"))), &env(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.client_secret_file"), "{err}");
    }

    #[test]
    fn the_client_id_comes_from_env_first_and_is_required() {
        let mut r = raw(Some("s"), None);
        r.auth.client_id = None;
        let err = validate(r, &env(&[]), None).unwrap_err().to_string();
        assert!(err.contains("auth.client_id"), "{err}");
        let cfg = validate(
            raw(Some("s"), None),
            &env(&[("UNDERSTORY_CLIENT_ID", "from-env")]),
            None,
        )
        .unwrap();
        assert_eq!(cfg.auth.client_id, "from-env");
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut r = raw(Some("s"), None);
        r.api.base_url = "ftp://example.org".into();
        assert!(
            validate(r, &env(&[]), None)
                .unwrap_err()
                .to_string()
                .contains("api.base_url")
        );
        let mut r = raw(Some("s"), None);
        r.api.page_size = 0;
        assert!(
            validate(r, &env(&[]), None)
                .unwrap_err()
                .to_string()
                .contains("api.page_size")
        );
        let mut r = raw(Some("s"), None);
        r.schedule = Some("every now and then".into());
        let err = validate(r, &env(&[]), None).unwrap_err().to_string();
        assert!(
            err.contains("`schedule`") && err.contains("every now and then"),
            "{err}"
        );
        let mut r = raw(Some("s"), None);
        r.streams = RawStreams::only(&[]);
        assert!(
            validate(r, &env(&[]), None)
                .unwrap_err()
                .to_string()
                .contains("streams")
        );
    }

    #[test]
    fn a_value_in_the_wrong_place_is_not_repeated_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[auth]\nclient_id = \"x\"\n").unwrap();
        for (var, value) in [
            ("UNDERSTORY_SYNC__AUTH", "SUPERSECRET"),
            ("UNDERSTORY_SYNC__API__BURST", "SUPERSECRET"),
        ] {
            let err = read_raw(&path, &env(&[(var, value)])).unwrap_err().to_string();
            assert!(err.contains(var) && !err.contains("SUPERSECRET"), "{err}");
        }
        std::fs::write(&path, "[api]\nburst = \"SUPERSECRET\"\n").unwrap();
        let err = read_raw(&path, &env(&[])).unwrap_err().to_string();
        assert!(err.contains("api.burst") && !err.contains("SUPERSECRET"), "{err}");
    }

    #[test]
    fn a_snapshot_needs_a_mode_nobody_else_writes_and_a_path_of_its_own() {
        // A real directory, so that `..` and symlinks resolve as on a server.
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(data.path().join("data")).unwrap();
        let with = |path: &str, mode: &str| {
            let mut r = raw(Some("s"), None);
            r.database = data.path().join("data/u.sqlite");
            let path = path.strip_prefix("/data").map_or_else(
                || PathBuf::from(path),
                |rest| PathBuf::from(format!("{}/data{rest}", data.path().display())),
            );
            r.snapshot = RawSnapshot {
                path: Some(path),
                mode: mode.to_owned(),
            };
            validate(r, &env(&[]), None)
        };
        let s = with("/srv/u.sqlite", "0644").unwrap().snapshot.unwrap();
        assert_eq!((s.path, s.mode), (PathBuf::from("/srv/u.sqlite"), 0o644));
        for (mode, says) in [
            ("rw-r--r--", "not an octal"),
            ("0666", "drop the write bits"),
            ("0040", "owner unable"),
        ] {
            let err = with("/srv/u.sqlite", mode).unwrap_err().to_string();
            assert!(
                err.starts_with("config key `snapshot.mode`") && err.contains(says),
                "{err}"
            );
        }
        let err = with("/data/u.sqlite", "0640").unwrap_err().to_string();
        assert!(err.contains("is the database or a file it needs"), "{err}");
        for beside in [
            "/data/u.sqlite-wal",
            "/data/../data/u.sqlite-shm",
            "/data/u.sqlite.lock",
        ] {
            let err = with(beside, "0640").unwrap_err().to_string();
            assert!(err.starts_with("config key `snapshot.path`"), "{beside}: {err}");
        }
        assert!(with("", "0640").unwrap().snapshot.is_none());
    }

    #[test]
    fn the_429_wait_is_at_least_a_minute_except_on_loopback_and_the_pace_is_ordered() {
        let err = |r: RawConfig| validate(r, &env(&[]), None).unwrap_err().to_string();
        let mut r = raw(Some("s"), None);
        r.retry.rate_limited_wait_secs = 0;
        assert!(err(r).contains("retry.rate_limited_wait_secs"));
        let mut r = raw(Some("s"), None);
        r.retry.rate_limited_wait_secs = 30;
        assert!(err(r).contains("at least 60"));
        for host in ["http://127.0.0.1:8787", "http://localhost:1", "http://[::1]:2"] {
            let mut r = raw(Some("s"), None);
            r.api.base_url = host.into();
            r.retry.rate_limited_wait_secs = 1;
            assert!(validate(r, &env(&[]), None).is_ok(), "{host}");
        }
        let mut r = raw(Some("s"), None);
        r.retry.max_retry_after_secs = 10;
        assert!(err(r).contains("retry.max_retry_after_secs"));
        let mut r = raw(Some("s"), None);
        r.api.requests_per_second = 100;
        assert!(err(r).contains("api.max_requests_per_second"));
    }

    #[test]
    fn an_unknown_stream_is_named_with_the_known_ones() {
        let mut r = raw(Some("s"), None);
        r.streams.set("bokings", true);
        let err = validate(r, &env(&[]), None).unwrap_err().to_string();
        assert!(
            err.contains("`bokings`") && err.contains("the streams are bookings, booking_tickets"),
            "{err}"
        );
        let cfg = validate(raw(Some("s"), None), &env(&[]), None).unwrap();
        let names: Vec<&str> = cfg.streams.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "bookings",
                "orders",
                "order_line_items",
                "order_transactions",
                "order_refunds",
                "marketing_consents"
            ],
            "the defaults"
        );
    }

    #[test]
    fn a_per_parent_stream_needs_its_parent() {
        let mut r = raw(Some("s"), None);
        r.streams.set("orders", false);
        let cfg = validate(r, &env(&[]), None).unwrap();
        assert!(
            cfg.streams.iter().all(|s| !s.name.starts_with("order")),
            "an unnamed per-parent stream follows its parent"
        );
        let mut r = raw(Some("s"), None);
        r.streams.set("orders", false);
        r.streams.set("order_line_items", true);
        let err = validate(r, &env(&[]), None).unwrap_err().to_string();
        assert!(
            err.contains("`order_line_items` is fetched per item of `orders`")
                && err.contains("orders = true"),
            "{err}"
        );
        let mut r = raw(Some("s"), None);
        for s in [
            "orders",
            "order_line_items",
            "order_transactions",
            "order_refunds",
        ] {
            r.streams.set(s, false);
        }
        assert!(validate(r, &env(&[]), None).is_ok());
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        for key in ["api.base_url", "auth.token_url"] {
            let mut r = raw(Some("s"), None);
            let url = "http://api.example.com".to_owned();
            if key == "api.base_url" {
                r.api.base_url = url;
            } else {
                r.auth.token_url = url;
            }
            let err = validate(r, &env(&[]), None).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("in clear"), "{err}");
        }
        let mut r = raw(Some("s"), None);
        r.api.base_url = "http://127.0.0.1:8787".into();
        r.auth.token_url = "http://localhost:8787/oauth2/token".into();
        r.retry.rate_limited_wait_secs = 60;
        assert!(validate(r, &env(&[]), None).is_ok());
    }

    #[test]
    fn a_number_where_a_path_belongs_is_a_type_error_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "database = 5\n[auth]\nclient_id = \"x\"\nclient_secret = \"s\"\n",
        )
        .unwrap();
        let err = load(&path, &env(&[])).unwrap_err().to_string();
        assert!(err.contains("`database`") && err.contains("path"), "{err}");
    }

    #[test]
    fn a_third_party_config_needs_a_loopback_redirect_and_a_key_away_from_the_data() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        let third_party = |redirect: Option<&str>, key: Option<&str>| {
            let mut r = raw(Some("s"), None);
            r.database = dir.path().join("data/db.sqlite");
            r.auth.method = RawMethod::AuthorizationCode;
            r.auth.redirect_uri = redirect.map(str::to_owned);
            r.auth.token_key_file = key.map(|k| dir.path().join(k));
            r
        };
        let err = |r: RawConfig, e: &Environment| validate(r, e, None).unwrap_err().to_string();
        let loopback = Some("http://127.0.0.1:8976/callback");
        let cfg = validate(third_party(loopback, Some("keys/k")), &env(&[]), None).unwrap();
        let AuthMethod::AuthorizationCode(tp) = &cfg.auth.method else {
            panic!("{:?}", cfg.auth.method)
        };
        assert!(tp.token_file.ends_with("data/db.sqlite.refresh-token"), "{tp:?}");
        assert!(tp.pkce && !tp.key_is_credential);

        for bad in [
            "https://example.com/callback",
            "http://example.com:8976/callback",
            "http://127.0.0.1/callback",
        ] {
            let e = err(third_party(Some(bad), Some("keys/k")), &env(&[]));
            assert!(
                e.contains("`auth.redirect_uri`") && e.contains("loopback"),
                "{bad}: {e}"
            );
        }
        assert!(err(third_party(None, Some("keys/k")), &env(&[])).contains("`auth.redirect_uri`"));
        let e = err(third_party(loopback, None), &env(&[]));
        assert!(
            e.contains("`auth.token_key_file`") && e.contains(KEY_CREDENTIAL_NAME),
            "{e}"
        );
        let e = err(third_party(loopback, Some("data/k")), &env(&[]));
        assert!(e.contains("same directory as the database"), "{e}");

        // A systemd credential is used when no key file is named, and may sit anywhere.
        std::fs::write(dir.path().join("data").join(KEY_CREDENTIAL_NAME), "k").unwrap();
        let creds = env(&[("CREDENTIALS_DIRECTORY", dir.path().join("data").to_str().unwrap())]);
        let cfg = validate(third_party(loopback, None), &creds, None).unwrap();
        let AuthMethod::AuthorizationCode(tp) = &cfg.auth.method else {
            panic!()
        };
        assert!(tp.key_is_credential && tp.token_key.ends_with(KEY_CREDENTIAL_NAME));
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let cfg = validate(raw(Some("hunter2-very-secret"), None), &env(&[]), None).unwrap();
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
