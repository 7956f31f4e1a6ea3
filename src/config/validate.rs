//! From `RawConfig` to `Config`: one check per section, each error naming its key.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use url::Url;

use super::error::{Error, invalid};
use super::paths::{distinct, key_kept_apart, relative_to, token_file};
use super::raw::*;
use super::secret::secret;
use super::types::*;
use crate::streams::{self, Stream};

/// Turns a raw configuration, read from the config file `file`, into typed values; relative
/// paths resolve against the file's directory, and no two files the job reads or writes may be
/// the same one.
pub fn validate(raw: RawConfig, env: &Environment, file: Option<&Path>) -> Result<Config, Error> {
    let base = file.and_then(Path::parent);
    let database = relative_to(base, raw.database.clone());
    let secret_file = raw.auth.client_secret_file.clone().map(|p| relative_to(base, p));
    let auth = auth(&raw.auth, env, base, &database)?;
    let api = api(&raw.api)?;
    let retry = retry(&raw.retry, &api.base_url)?;
    let sync = sync(&raw.sync, &api)?;
    let streams = enabled_streams(&raw.streams)?;
    let snapshot = snapshot(&raw.snapshot, base)?;
    let token_key_file = raw.auth.token_key_file.clone().map(|p| relative_to(base, p));
    let webhooks = raw
        .webhooks
        .as_ref()
        .map(|w| super::webhooks::webhooks(w, env, base, &database, token_key_file.as_deref()))
        .transpose()?;
    let schedule = match raw.schedule.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(expr) => Some(
            crate::schedule::parse(expr)
                .map_err(|e| invalid("schedule", format!("'{}': {}", e.expr, e.why)))?,
        ),
        None => None,
    };
    let textfile = raw.metrics.textfile.is_some();
    let config = Config {
        database,
        schedule,
        auth,
        api,
        retry,
        sync,
        streams,
        metrics_textfile: raw.metrics.textfile.map(|p| relative_to(base, p)),
        metrics_account: metrics_account(raw.metrics.account, file, textfile)?,
        snapshot,
        webhooks,
    };
    distinct(&config, file, secret_file.as_deref())?;
    Ok(config)
}

/// A URL the job sends credentials or requests to: https, or http on loopback only.
fn url(key: &'static str, s: &str) -> Result<Url, Error> {
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
}

/// A `*_secs` setting, at most [`MAX_DURATION_SECS`].
fn secs(key: &'static str, n: u64) -> Result<Duration, Error> {
    if n > MAX_DURATION_SECS {
        return Err(invalid(
            key,
            format!("{n} is longer than the most a duration may be, {MAX_DURATION_SECS} (a week)"),
        ));
    }
    Ok(Duration::from_secs(n))
}

/// A `*_ms` setting, at most [`MAX_DURATION_SECS`] in milliseconds.
fn millis(key: &'static str, n: u64) -> Result<Duration, Error> {
    let max = MAX_DURATION_SECS * 1000;
    if n > max {
        return Err(invalid(
            key,
            format!("{n} is longer than the most a duration may be, {max} (a week)"),
        ));
    }
    Ok(Duration::from_millis(n))
}

/// The most requests a run may have under way at once. The memory budget bounds their bodies
/// whatever their number; each one still holds a connection, its buffers and a socket's, and
/// Understory's rate limit leaves no use for more.
pub(crate) const MAX_CONCURRENT: u32 = 64;

/// `api.max_concurrent`: from 1 to [`MAX_CONCURRENT`].
fn max_concurrent(n: u32) -> Result<usize, Error> {
    let n = positive("api.max_concurrent", n)?.get();
    if n > MAX_CONCURRENT {
        return Err(invalid(
            "api.max_concurrent",
            format!("{n} is above {MAX_CONCURRENT}: more requests at once add connections, not speed"),
        ));
    }
    Ok(n as usize)
}

fn positive(key: &'static str, n: u32) -> Result<NonZeroU32, Error> {
    NonZeroU32::new(n).ok_or_else(|| invalid(key, "must be at least 1"))
}

/// `[auth]`: the token endpoint, the client, its secret, and a third-party connection's files.
fn auth(raw: &RawAuth, env: &Environment, base: Option<&Path>, database: &Path) -> Result<AuthConfig, Error> {
    let token_url = url("auth.token_url", &raw.token_url)?;
    let client_secret = secret(raw, env, base)?;
    let client_id = env
        .get("UNDERSTORY_CLIENT_ID")
        .map(str::to_owned)
        .or(raw.client_id.clone().filter(|s| !s.is_empty()))
        .ok_or_else(|| {
            invalid(
                "auth.client_id",
                "missing: set it in the config file or UNDERSTORY_CLIENT_ID",
            )
        })?;
    let method = match raw.method {
        RawMethod::ClientCredentials => AuthMethod::ClientCredentials,
        RawMethod::AuthorizationCode => {
            AuthMethod::AuthorizationCode(Box::new(third_party(raw, env, base, database)?))
        }
    };
    Ok(AuthConfig {
        token_url,
        audience: raw.audience.clone(),
        client_id,
        client_secret,
        renew_before: secs("auth.renew_before_secs", raw.renew_before_secs)?,
        method,
    })
}

/// `[api]`: where, as whom, how fast and how much at once.
fn api(raw: &RawApi) -> Result<ApiConfig, Error> {
    let mut base_url = url("api.base_url", &raw.base_url)?;
    if !base_url.path().ends_with('/') {
        let p = format!("{}/", base_url.path());
        base_url.set_path(&p);
    }
    if !(1..=100).contains(&raw.page_size) {
        return Err(invalid(
            "api.page_size",
            "must be between 1 and 100 (the API's limit)",
        ));
    }
    if raw.user_agent.trim().is_empty() {
        return Err(invalid(
            "api.user_agent",
            "must not be empty: Understory may require it",
        ));
    }
    if raw.accept_language.trim().is_empty() {
        return Err(invalid(
            "api.accept_language",
            "must not be empty: experiences require it",
        ));
    }
    let requests_per_second = positive("api.requests_per_second", raw.requests_per_second)?;
    let max_requests_per_second = positive("api.max_requests_per_second", raw.max_requests_per_second)?;
    if requests_per_second > max_requests_per_second {
        return Err(invalid(
            "api.requests_per_second",
            format!("{requests_per_second} is above api.max_requests_per_second ({max_requests_per_second})"),
        ));
    }
    Ok(ApiConfig {
        base_url,
        user_agent: raw.user_agent.clone(),
        accept_language: raw.accept_language.clone(),
        connect_timeout: secs("api.connect_timeout_secs", raw.connect_timeout_secs.max(1))?,
        request_timeout: secs("api.request_timeout_secs", raw.request_timeout_secs.max(1))?,
        requests_per_second,
        max_requests_per_second,
        burst: positive("api.burst", raw.burst)?,
        max_concurrent: max_concurrent(raw.max_concurrent)?,
        page_size: raw.page_size,
        max_response_bytes: usize::try_from(raw.max_response_bytes)
            .unwrap_or(usize::MAX)
            .max(64 * 1024),
    })
}

/// `[retry]`: attempts, backoff, and the waits after a 429 (a minute, the docs ask, unless the
/// API is on loopback).
fn retry(raw: &RawRetry, base_url: &Url) -> Result<RetryConfig, Error> {
    if raw.max_attempts == 0 {
        return Err(invalid("retry.max_attempts", "must be at least 1"));
    }
    if raw.rate_limited_wait_secs < MIN_RATE_LIMITED_WAIT_SECS && !is_loopback(base_url) {
        return Err(invalid(
            "retry.rate_limited_wait_secs",
            format!(
                "must be at least {MIN_RATE_LIMITED_WAIT_SECS}: Understory asks clients to back off for a minute after a 429 (shorter waits are allowed only for an API on loopback)"
            ),
        ));
    }
    if raw.rate_limited_wait_secs == 0 {
        return Err(invalid("retry.rate_limited_wait_secs", "must be at least 1"));
    }
    if raw.max_retry_after_secs < raw.rate_limited_wait_secs {
        return Err(invalid(
            "retry.max_retry_after_secs",
            "must be at least retry.rate_limited_wait_secs",
        ));
    }
    Ok(RetryConfig {
        max_attempts: raw.max_attempts,
        initial_backoff: millis("retry.initial_backoff_ms", raw.initial_backoff_ms)?,
        max_backoff: millis("retry.max_backoff_ms", raw.max_backoff_ms)?
            .max(millis("retry.initial_backoff_ms", raw.initial_backoff_ms)?),
        rate_limited_wait: secs("retry.rate_limited_wait_secs", raw.rate_limited_wait_secs)?,
        max_retry_after: secs("retry.max_retry_after_secs", raw.max_retry_after_secs)?,
        run_budget: raw.run_budget,
    })
}

/// `[sync]`: the walk's overlap, cursor age and clock skew, the progress lines, the run's
/// ceilings in time and in bytes.
fn sync(raw: &RawSync, api: &ApiConfig) -> Result<SyncConfig, Error> {
    if raw.max_clock_skew_secs < 60 {
        return Err(invalid(
            "sync.max_clock_skew_secs",
            "must be at least 60: clocks a minute apart are ordinary",
        ));
    }
    let max_in_flight_bytes = usize::try_from(raw.max_in_flight_bytes).unwrap_or(usize::MAX);
    if max_in_flight_bytes < api.max_response_bytes {
        return Err(invalid(
            "sync.max_in_flight_bytes",
            format!(
                "must be at least api.max_response_bytes ({}): one page must fit",
                api.max_response_bytes
            ),
        ));
    }
    if raw.max_run_secs < 60 {
        return Err(invalid(
            "sync.max_run_secs",
            "must be at least 60: a run that stops sooner may never finish a first load",
        ));
    }
    Ok(SyncConfig {
        overlap: secs("sync.overlap_secs", raw.overlap_secs)?,
        cursor_ttl: secs("sync.cursor_ttl_secs", raw.cursor_ttl_secs)?,
        progress_interval: (raw.progress_secs > 0)
            .then(|| secs("sync.progress_secs", raw.progress_secs))
            .transpose()?,
        max_run: secs("sync.max_run_secs", raw.max_run_secs)?,
        max_clock_skew: secs("sync.max_clock_skew_secs", raw.max_clock_skew_secs)?,
        max_in_flight_bytes,
    })
}

/// `[streams]`: known names only, at least one on, and no per-parent stream without its parent.
fn enabled_streams(raw: &RawStreams) -> Result<Vec<&'static Stream>, Error> {
    if let Some(unknown) = raw.0.keys().find(|k| streams::by_name(k).is_none()) {
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
        if raw.0.get(s.name).copied().unwrap_or(default) {
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
    Ok(streams)
}

/// The textfile's `account` label: the key, or the config file's stem. Letters, digits and
/// `_.@-` only (at most 64), so the label never needs escaping and reads as a name in alerts.
/// A stem that cannot be one is an error only when there is a textfile to label: falling back
/// to a shared default would make two accounts' series collide.
fn metrics_account(key: Option<String>, file: Option<&Path>, textfile: bool) -> Result<String, Error> {
    let plain = |a: &str| {
        !a.is_empty() && a.len() <= 64 && a.chars().all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c))
    };
    const RULE: &str = "1 to 64 letters, digits, '_', '.', '@' or '-'";
    match (key, file.and_then(Path::file_stem)) {
        (Some(a), _) if plain(&a) => Ok(a),
        (Some(a), _) => Err(invalid("metrics.account", format!("'{a}': use {RULE}"))),
        (None, None) => Ok("understory-sync".to_owned()),
        (None, Some(stem)) => {
            let stem = stem.to_string_lossy().into_owned();
            if plain(&stem) {
                Ok(stem)
            } else if textfile {
                Err(invalid(
                    "metrics.account",
                    format!(
                        "unset, and the config file's name '{stem}' cannot be the metrics' account label: set it ({RULE})"
                    ),
                ))
            } else {
                Ok("understory-sync".to_owned())
            }
        }
    }
}

/// `[snapshot]`, checked: a mode `chmod` would take that nobody else may write (that its path
/// is not the database's, nor any other file's, `distinct` checks).
pub(super) fn snapshot(raw: &RawSnapshot, base: Option<&Path>) -> Result<Option<Snapshot>, Error> {
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
    Ok(Some(Snapshot { path, mode }))
}

/// The third-party settings of `auth.method = "authorization_code"`.
pub(super) fn third_party(
    raw: &RawAuth,
    env: &Environment,
    base: Option<&Path>,
    database: &Path,
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
    key_kept_apart(
        "auth.token_key_file",
        &token_key,
        key_is_credential,
        "the token",
        [("the database", database), ("auth.token_file", &token_file)],
    )?;
    Ok(ThirdParty {
        authorize_url,
        redirect_uri,
        token_file,
        token_key,
        key_is_credential,
        pkce: raw.pkce,
    })
}
