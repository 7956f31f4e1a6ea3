//! The validated configuration the job runs with, and the defaults it falls back on.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::streams::Stream;

/// Understory's production endpoints (`docs/understory-api.md` §1, §3).
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.understory.io";
pub(crate) const DEFAULT_TOKEN_URL: &str = "https://api.auth.understory.io/oauth2/token";
pub(crate) const DEFAULT_AUDIENCE: &str = "https://api.understory.io";
/// The authorization endpoint of third-party integrations (the *Authentication* guide).
pub(crate) const DEFAULT_AUTHORIZE_URL: &str = "https://api.auth.understory.io/oauth2/auth";
/// The file name looked up in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
pub(crate) const CREDENTIAL_NAME: &str = "understory-client-secret";
/// The credential that holds the key of the refresh-token file.
pub(crate) const KEY_CREDENTIAL_NAME: &str = "understory-token-key";
/// The systemd credential holding the key of the webhook secrets (`systemd/webhooks.conf`): a
/// key of its own, not the refresh token's, so neither drop-in hands the other's key.
pub(crate) const WEBHOOK_KEY_CREDENTIAL_NAME: &str = "understory-webhooks-key";
pub(super) const ENV_PREFIX: &str = "UNDERSTORY_SYNC";
/// The largest response body read, decoded: some fifty times the largest page the docs allow
/// (100 items), so a real answer never comes near it and a hostile one cannot take the memory.
pub(super) const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// The bytes a run holds in flight by default (`memory::Budget`): four of the largest bodies
/// allowed, thousands of ordinary pages, and small beside a server's memory.
pub(super) const DEFAULT_MAX_IN_FLIGHT_BYTES: u64 = 64 * 1024 * 1024;
/// A run's wall-clock ceiling by default: a first load of a large account takes hours at the
/// API's pace; the oneshot units' `TimeoutStartSec=` is a little longer.
pub(super) const DEFAULT_MAX_RUN_SECS: u64 = 6 * 3600;
/// The longest any duration setting (`*_secs`, `*_ms`) may be: a week. Longer than any wait,
/// timeout, overlap or run the job has a use for, and far enough from `u64::MAX` that a clock
/// reading plus it never overflows (which would panic mid-run).
pub const MAX_DURATION_SECS: u64 = 7 * 24 * 3600;
/// The docs ask clients to back off "for at least one minute" after a 429 (`docs/understory-api.md` §4).
pub(super) const MIN_RATE_LIMITED_WAIT_SECS: u64 = 60;

/// True for an API on this machine (the sandbox), where shorter 429 waits make tests practical.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The validated configuration the job runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: PathBuf,
    /// For `run`; validated at load so a bad expression fails before anything starts.
    pub schedule: Option<cron::Schedule>,
    pub auth: AuthConfig,
    pub api: ApiConfig,
    pub(crate) retry: RetryConfig,
    pub sync: SyncConfig,
    pub streams: Vec<&'static Stream>,
    pub metrics_textfile: Option<PathBuf>,
    /// The `account` label on every series of the textfile: `metrics.account`, or the config
    /// file's name without `.toml` (`acme` for template instance `understory-sync@acme`).
    pub metrics_account: String,
    pub(crate) snapshot: Option<Snapshot>,
    /// `[webhooks]`: the receiver `run` serves; `None`, no receiver.
    pub webhooks: Option<Webhooks>,
}

/// `[webhooks]`, validated.
#[derive(Debug, Clone)]
pub struct Webhooks {
    /// The socket the receiver binds, meant to sit behind the operator's TLS reverse proxy.
    pub listen: std::net::SocketAddr,
    /// The path it answers POSTs on.
    pub path: String,
    /// A `webhook-timestamp` further from our clock than this is refused (replays).
    pub(crate) tolerance: Duration,
    /// The subscriptions' signing secrets, sealed (`webhooks::secrets`).
    pub secret_file: PathBuf,
    /// The key that seals them: `webhooks.key_file`, or a systemd credential.
    pub key_file: PathBuf,
    pub key_is_credential: bool,
    /// Applied deliveries are kept this long in `webhook_inbox`, then pruned.
    pub(crate) keep: Duration,
}

/// `[snapshot]`: where a consistent, read-only copy of the database is published after each
/// successful run (for analysts elsewhere, `datasette --immutable`, rsync), and its mode.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) path: PathBuf,
    pub(crate) mode: u32,
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
    pub(crate) renew_before: Duration,
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
    pub(crate) user_agent: String,
    pub(crate) accept_language: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    /// The pace of a first run; later runs start at the pace the previous one learned.
    pub(crate) requests_per_second: NonZeroU32,
    /// The pace never grows beyond this, whatever the API tolerates.
    pub(crate) max_requests_per_second: NonZeroU32,
    pub(crate) burst: NonZeroU32,
    /// Requests in flight at once: the start and the ceiling of the adaptive cap.
    pub max_concurrent: usize,
    pub(crate) page_size: u32,
    /// A response body is read up to this many bytes, decoded, and refused past it.
    pub max_response_bytes: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct RetryConfig {
    /// Tries of one request, the first included.
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    /// How long a 429 without `Retry-After` pauses every stream: the docs ask for at least a
    /// minute (`docs/understory-api.md` §4); shorter only for an API on loopback (the sandbox).
    pub(crate) rate_limited_wait: Duration,
    /// A `Retry-After` longer than this is capped to it, so a bad header cannot stall a run.
    pub(crate) max_retry_after: Duration,
    /// Retries allowed in one run over all requests, so a dead API ends the run.
    pub(crate) run_budget: u32,
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// How far below the high-water mark an incremental pass keeps reading.
    pub(crate) overlap: Duration,
    /// A checkpointed cursor older than this is not used to resume (`docs/understory-api.md` §1.1: "short-lived").
    pub(crate) cursor_ttl: Duration,
    /// How often a run without a terminal logs each stream's progress (`None`: never).
    pub progress_interval: Option<Duration>,
    /// A run stops itself after this long, as on SIGTERM (the next run resumes): a server
    /// that keeps handing out new pages cannot hold it, or its timer, for ever.
    pub max_run: Duration,
    /// An `updated_at` or `created_at` further than this ahead of both the API's `Date` and
    /// the local clock is a clock glitch: stored, but never a high-water mark or a resume point
    /// (one such item would otherwise end every later incremental pass at its first page).
    pub(crate) max_clock_skew: Duration,
    /// Bytes read from the API and not yet written that a run holds at once (see `memory`);
    /// also the most one per-parent list may add up to.
    pub(crate) max_in_flight_bytes: usize,
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
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}
