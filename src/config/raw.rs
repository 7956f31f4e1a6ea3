//! The configuration as written: the TOML file's sections with their defaults, before any
//! check. `validate` turns it into `Config`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::types::*;

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
    /// `[webhooks]`: absent, no receiver.
    pub webhooks: Option<RawWebhooks>,
}

/// `[webhooks]`: the receiver `run` serves, and where its subscriptions' secrets are kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebhooks {
    pub listen: String,
    pub path: String,
    pub tolerance_secs: u64,
    pub secret_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub keep_days: u64,
}

impl Default for RawWebhooks {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8788".to_owned(),
            path: "/webhooks".to_owned(),
            tolerance_secs: 300,
            secret_file: None,
            key_file: None,
            keep_days: 7,
        }
    }
}

/// Optional read-only copy of the database, published after each successful run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSnapshot {
    pub(crate) path: Option<PathBuf>,
    /// Octal, as `chmod` takes it.
    pub(crate) mode: String,
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
    pub(crate) textfile: Option<PathBuf>,
    pub(crate) account: Option<String>,
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
            webhooks: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    pub token_url: String,
    pub(crate) audience: String,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub(crate) client_secret_file: Option<PathBuf>,
    pub(crate) renew_before_secs: u64,
    pub(crate) method: RawMethod,
    pub(crate) authorize_url: String,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) token_file: Option<PathBuf>,
    pub(crate) token_key_file: Option<PathBuf>,
    pub(crate) pkce: bool,
}

/// `auth.method`: which grant issues the access tokens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawMethod {
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
    pub(crate) user_agent: String,
    pub accept_language: String,
    pub(crate) connect_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub requests_per_second: u32,
    pub max_requests_per_second: u32,
    pub burst: u32,
    pub max_concurrent: u32,
    pub page_size: u32,
    pub(crate) max_response_bytes: u64,
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
    pub(crate) max_retry_after_secs: u64,
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
    pub(crate) overlap_secs: u64,
    pub(crate) cursor_ttl_secs: u64,
    pub(crate) progress_secs: u64,
    pub(crate) max_run_secs: u64,
    pub(crate) max_clock_skew_secs: u64,
    pub(crate) max_in_flight_bytes: u64,
}

impl Default for RawSync {
    fn default() -> Self {
        Self {
            overlap_secs: 300,
            cursor_ttl_secs: 300,
            progress_secs: 30,
            max_run_secs: DEFAULT_MAX_RUN_SECS,
            max_clock_skew_secs: 86_400,
            max_in_flight_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
        }
    }
}

/// `[streams]`: a stream's name and whether it runs. A stream not named runs if it is on by
/// default (`streams::Stream::enabled_by_default`); a name no stream has is an error.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(transparent)]
pub struct RawStreams(pub(crate) BTreeMap<String, bool>);

impl RawStreams {
    /// Turns the stream `name` on or off.
    pub fn set(&mut self, name: &str, on: bool) {
        self.0.insert(name.to_owned(), on);
    }
}
