//! Sandbox settings: `config/sandbox-server.toml`, overridden by `understory-sync sandbox` flags.
//!
//! Every default is what the real API is believed to do (`docs/understory-api.md` §6), except
//! where a simulator must be friendlier to be useful (a generous rate limit, no faults).

use std::{collections::BTreeSet, path::Path};

use serde::Deserialize;

/// The audience every token request must name, a fixed string (*Authentication* guide).
pub const AUDIENCE: &str = "https://api.understory.io";

/// Read scopes the sync needs; the sandbox's default key is granted all of them.
pub const READ_SCOPES: [&str; 6] = [
    "booking.read",
    "order.read",
    "marketing.read",
    "event.read",
    "experience.read",
    "webhook.read",
];

/// Write scopes the default keys also hold: registering a webhook subscription needs
/// `webhook.write` (`docs/understory-api.md` §1, the endpoint table).
pub const WRITE_SCOPES: [&str; 1] = ["webhook.write"];

/// The default keys' scopes: every read scope and every write scope.
fn default_scopes() -> BTreeSet<String> {
    READ_SCOPES
        .iter()
        .chain(&WRITE_SCOPES)
        .map(|s| (*s).to_owned())
        .collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Seed of every generated value: the same seed and sizes give the same data.
    pub seed: u64,
    pub data: DataConfig,
    pub clients: Vec<ClientKey>,
    /// Lifetime of issued access tokens; the real server says 3599.
    pub token_ttl_secs: u64,
    /// How long a cursor stays valid; "short-lived" with no number in the docs (`docs/understory-api.md` §6.5).
    pub cursor_ttl_secs: u64,
    /// `empty`, `absent` or `mixed`: how the last page says it is the last (`docs/understory-api.md` §6.4).
    pub end_of_list: EndOfList,
    /// Reject (the default) or clamp a `limit` outside the endpoint's bounds (`docs/understory-api.md` §6.3).
    pub clamp_limit: bool,
    /// Reject token requests whose body has `%7E` instead of `~`, as one integrator reports (`docs/understory-api.md` §3).
    pub strict_tilde: bool,
    /// Answer 400 to requests without a `User-Agent` (`docs/understory-api.md` §6.16).
    pub require_user_agent: bool,
    /// Gzip answers for clients that send `Accept-Encoding: gzip`, as production APIs do.
    pub gzip: bool,
    pub rate_limit: RateLimitConfig,
    pub faults: FaultConfig,
    pub mutate: MutateConfig,
    /// What `GET /oauth2/auth` does: show the consent page, or approve or deny at once.
    pub consent: Consent,
    /// How long an authorization code can be exchanged ("expire shortly",
    /// `docs/understory-api.md` §3).
    pub code_ttl_secs: u64,
    /// How long a refresh token lives (30 days, `docs/understory-api.md` §3).
    pub refresh_token_ttl_secs: u64,
    /// Issue a new refresh token on every refresh, the old one then refused (Ory Hydra's
    /// default). Off: the same refresh token stays valid until it expires.
    pub rotate_refresh_tokens: bool,
    pub webhooks: WebhookConfig,
}

/// The customer's answer on the consent page (`consent` here, `--consent` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// Show the page and wait for a click (a form POST).
    Page,
    /// Approve at once: the redirect carries a code (for tests and the demo).
    Approve,
    /// Deny at once: the redirect carries `error=access_denied`.
    Deny,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            data: DataConfig::default(),
            clients: vec![ClientKey::default(), ClientKey::third_party(DEFAULT_REDIRECT_URI)],
            token_ttl_secs: 3599,
            cursor_ttl_secs: 600,
            end_of_list: EndOfList::Mixed,
            clamp_limit: false,
            strict_tilde: true,
            require_user_agent: false,
            gzip: true,
            rate_limit: RateLimitConfig::default(),
            faults: FaultConfig::default(),
            mutate: MutateConfig::default(),
            consent: Consent::Page,
            code_ttl_secs: 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            rotate_refresh_tokens: true,
            webhooks: WebhookConfig::default(),
        }
    }
}

impl SandboxConfig {
    /// Reads a TOML file; unknown keys are errors so that a typo never silently does nothing.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read sandbox config {}: {e}", path.display()))?;
        toml_from_str(&text).map_err(|e| format!("sandbox config {}: {e}", path.display()))
    }
}

fn toml_from_str(text: &str) -> Result<SandboxConfig, String> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| e.to_string())
}

/// How many rows the generated world starts with. Orders follow bookings one to one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub bookings: u32,
    pub consents: u32,
    pub events: u32,
    pub experiences: u32,
    /// Share of optional fields sent as `null` instead of being left out (`docs/understory-api.md` §6.10).
    pub null_share: f64,
    /// Share of enum values the docs do not list (`docs/understory-api.md` §6.11).
    pub unknown_enum_share: f64,
    /// Send the shapes the docs leave open: unknown fields at every level, nulls inside nested
    /// objects, `discounts[]` instead of `discount`, a consent reference without `type`, an order
    /// `origin` without `type`, unknown transaction statuses, `next: null` on the last page, and
    /// now and then an item missing a field the job needs (its id, key or timestamp).
    pub variants: bool,
    /// Cap generated `updated_at` at the world's start instead of spreading it, so the newest
    /// rows share one timestamp (several percent of them): a stress test for ties.
    pub updated_pile_up: bool,
    /// Give every id a prefix holding `/ ? # %`, `..` and a space, as an API may: a client that
    /// puts ids into URL paths unescaped asks for the wrong resource.
    pub hostile_ids: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            bookings: 10_000,
            consents: 2_500,
            events: 500,
            experiences: 12,
            null_share: 0.2,
            unknown_enum_share: 0.01,
            variants: false,
            updated_pile_up: false,
            hostile_ids: false,
        }
    }
}

/// One OAuth client: an internal integration key (`client_credentials`, the default) or a
/// third-party app (`authorization_code` and `refresh_token`, with registered redirect URIs).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKey {
    pub client_id: String,
    pub client_secret: String,
    pub scopes: BTreeSet<String>,
    #[serde(default = "default_company")]
    pub company_name: String,
    #[serde(default = "default_grant_types")]
    pub grant_types: BTreeSet<String>,
    /// Exact redirect URIs a third-party app may be sent back to (RFC 6749 §3.1.2).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The name the consent page shows.
    #[serde(default = "default_app_name")]
    pub app_name: String,
}

fn default_company() -> String {
    "Sandbox Adventures ApS".to_owned()
}

fn default_grant_types() -> BTreeSet<String> {
    ["client_credentials".to_owned()].into()
}

fn default_app_name() -> String {
    "Sandbox App".to_owned()
}

impl ClientKey {
    /// The default third-party app: `sandbox-app`, redirected to `redirect_uri`.
    pub fn third_party(redirect_uri: &str) -> Self {
        let mut scopes = default_scopes();
        scopes.insert("offline".to_owned());
        Self {
            client_id: "sandbox-app".to_owned(),
            client_secret: "sandbox-app-secret".to_owned(),
            scopes,
            company_name: default_company(),
            grant_types: ["authorization_code", "refresh_token"].map(str::to_owned).into(),
            redirect_uris: vec![redirect_uri.to_owned()],
            app_name: "Sandbox Marketing App".to_owned(),
        }
    }
}

/// Where the default third-party app is registered to be redirected.
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:8976/callback";

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl Default for ClientKey {
    fn default() -> Self {
        Self {
            client_id: "sandbox-client".to_owned(),
            client_secret: "sandbox-secret".to_owned(),
            scopes: default_scopes(),
            company_name: default_company(),
            grant_types: default_grant_types(),
            redirect_uris: Vec::new(),
            app_name: default_app_name(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndOfList {
    /// `"next": ""` on the last page.
    Empty,
    /// No `next` key on the last page.
    Absent,
    /// Either, chosen per request from the seed.
    Mixed,
}

/// A request budget per client: the docs say both a window count and a concurrency cap exist,
/// and give no numbers; the client is never told these (no `X-RateLimit-*` headers).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub requests_per_window: u32,
    pub window_ms: u64,
    /// How requests are counted against `requests_per_window` per `window_ms`: the docs say a
    /// window exists, not its shape, so the job is tried against each.
    pub shape: WindowShape,
    pub max_concurrent: u32,
    /// Send `Retry-After: N` with 429s; the real API sends none (`docs/understory-api.md` §4), hence off by default.
    pub retry_after_secs: Option<u64>,
    /// After going over the budget, every request of that client is refused for this long: the
    /// docs' "back off for at least one minute", enforced. 0: only the window counts.
    pub penalty_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests_per_window: 5_000,
            window_ms: 1_000,
            shape: WindowShape::Fixed,
            max_concurrent: 32,
            retry_after_secs: None,
            penalty_ms: 0,
        }
    }
}

/// How a rate limit counts a client's requests (`requests_per_window` per `window_ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowShape {
    /// A count that starts afresh with each window (a window begins with the first request
    /// after the last one ended): a burst at a window's end and another at the next one's start
    /// both pass.
    #[default]
    Fixed,
    /// The requests admitted in the last `window_ms`, whenever they came.
    Sliding,
    /// A bucket of `requests_per_window` tokens, refilled evenly over `window_ms` (so its rate is
    /// `requests_per_window / window_ms` and its capacity a whole window's worth); each request
    /// takes one.
    TokenBucket,
}

/// Shares (0.0–1.0) of `/v1` requests that fail, each way; decided from the seed and the
/// request's sequence number, so a sequential client sees the same faults every time.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    pub status_500: f64,
    pub status_502: f64,
    pub status_503: f64,
    /// The connection is closed without an answer.
    pub reset: f64,
    /// The answer is delayed by `slow_ms`.
    pub slow: f64,
    pub slow_ms: u64,
    /// The body stops half-way although its `Content-Length` promised more.
    pub truncated: f64,
    /// A complete 200 answer whose body is not JSON.
    pub malformed: f64,
    /// Every this-many-th `/v1` request is answered 429 whatever the pace (2: every other one),
    /// as an API does whose budget is shared or whose proxy misbehaves; 0 = off.
    pub rate_limited_every: u32,
}

/// What one mutation step does to the world; see `World::mutate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MutateConfig {
    /// Simulated time one step advances.
    pub step_secs: i64,
    /// New bookings (and their orders) per step, as a share of current bookings (at least 1).
    pub new_share: f64,
    /// Bookings, orders and events updated per step, as a share (at least 1).
    pub update_share: f64,
    /// Orders that receive a refund per step, as a share (at least 1).
    pub refund_share: f64,
    /// Consents removed per step, and added, as a share (at least 1).
    pub consent_churn_share: f64,
}

impl Default for MutateConfig {
    fn default() -> Self {
        Self {
            step_secs: 3_600,
            new_share: 0.01,
            update_share: 0.02,
            refund_share: 0.01,
            consent_churn_share: 0.01,
        }
    }
}

/// How the sandbox delivers webhook events to subscriptions created through its API, and how
/// it misbehaves doing so. Each share (0.0–1.0) is drawn per delivery from the seed, so the same
/// calls give the same misbehaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Deliveries sent twice, under the same `webhook-id` (Standard Webhooks is at-least-once).
    pub duplicate_share: f64,
    /// Deliveries held back `delay_ms` before their first attempt, so later events overtake them
    /// (the *Webhooks* guide promises no order).
    pub delay_share: f64,
    pub delay_ms: u64,
    /// Events never sent at all: only a listing sync finds those changes.
    pub drop_share: f64,
    /// The wait before each retry of a failed attempt; after the last, the delivery is given up.
    /// Standard Webhooks retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h; the default
    /// keeps its shape scaled down to seconds, so a test or demo sees the whole schedule.
    pub retry_schedule_ms: Vec<u64>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            duplicate_share: 0.0,
            delay_share: 0.0,
            delay_ms: 0,
            drop_share: 0.0,
            retry_schedule_ms: vec![500, 2_000, 5_000, 15_000, 30_000],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_key_debug_redacts_the_secret() {
        let key = ClientKey::default();
        let shown = format!("{key:?}");
        assert!(!shown.contains("sandbox-secret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml_from_str("sed = 1").unwrap_err();
        assert!(err.contains("sed"), "{err}");
    }
}
