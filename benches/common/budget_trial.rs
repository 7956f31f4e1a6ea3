//! One trial of the pace against a budget it is not told: a first load against the sandbox's
//! rate limit, killed after `first`, then the next run for `after`, every figure read from the
//! log of what the API saw, none from the job's bookkeeping.
//!
//! Shared by `benches/pace.rs` (figures) and `tests/it/budget.rs` (goals), so both measure the
//! same way. Two ways to run one: `real`, the real binary against the sandbox on the real clock,
//! SIGKILLed; and `simulate`, the pace controller alone against the sandbox's own limiter on
//! tokio's paused clock (the whole job cannot run on a paused clock honestly: its SQLite writer
//! is a thread of its own, whose work the clock skips over).

use std::net::SocketAddr;
use std::time::Duration;
use understory_sync::test_support::pace::PaceExt as _;

use secrecy::SecretString;
use tokio::time::Instant;
use understory_sandbox::config::{RateLimitConfig, WindowShape};
use understory_sandbox::{Arrival, Sandbox, SandboxConfig};
use understory_sync::config::{self, RawConfig};

/// The budget a trial enforces and how long it runs.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub shape: WindowShape,
    /// Requests per second, on average over a window.
    pub per_second: u32,
    /// The window (fixed, sliding) or the bucket's capacity in seconds of its rate.
    pub window_secs: u32,
}

impl Budget {
    pub fn name(&self) -> String {
        let shape = match self.shape {
            WindowShape::Fixed => "fixed",
            WindowShape::Sliding => "sliding",
            WindowShape::TokenBucket => "token bucket",
        };
        format!("{shape} {} s", self.window_secs)
    }

    /// `shape:window_secs:per_second`, the shape `fixed`, `sliding` or `bucket`.
    pub fn parse(spec: &str) -> Option<Budget> {
        let mut parts = spec.trim().split(':');
        let shape = match parts.next()? {
            "fixed" => WindowShape::Fixed,
            "sliding" => WindowShape::Sliding,
            "bucket" => WindowShape::TokenBucket,
            _ => return None,
        };
        Some(Budget {
            shape,
            window_secs: parts.next()?.parse().ok()?,
            per_second: parts.next()?.parse().ok()?,
        })
    }

    /// The three shapes the benchmark and the tests hold the pace to, at 40 requests/s.
    pub fn three() -> [Budget; 3] {
        [
            Budget {
                shape: WindowShape::Fixed,
                per_second: 40,
                window_secs: 1,
            },
            Budget {
                shape: WindowShape::Sliding,
                per_second: 40,
                window_secs: 10,
            },
            Budget {
                shape: WindowShape::TokenBucket,
                per_second: 40,
                window_secs: 20,
            },
        ]
    }
}

/// What the API saw.
#[derive(Debug, Clone)]
pub struct Figures {
    pub budget: Budget,
    /// The first run's clean answers from 90 s to its end, over the budget for that time.
    pub share_after_90s: f64,
    pub first_429s: usize,
    /// The first run's 429s that began a pause: those more than 5 s after the one before (the
    /// others were already in flight when the pause began).
    pub first_bursts: usize,
    /// Seconds from the first run's first request to its first and to its last 429.
    pub first_429_at: Option<f64>,
    pub last_429_at: Option<f64>,
    /// The next run's clean answers over its first `after`, over the budget for that time.
    pub next_share: f64,
    pub next_429s: usize,
    pub requests: usize,
}

/// A sandbox with `budget` and enough orders that no run runs out of work.
pub async fn sandbox(budget: Budget, secs: u64) -> Sandbox {
    Sandbox::start(
        sandbox_config(budget, secs),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .expect("sandbox")
}

/// The sandbox's config for `budget`, with orders for `secs` of requests.
pub fn sandbox_config(budget: Budget, secs: u64) -> SandboxConfig {
    let mut sc = SandboxConfig::default();
    sc.data.bookings = (u64::from(budget.per_second) * secs / 2).max(2_000) as u32;
    sc.data.consents = 10;
    sc.rate_limit = RateLimitConfig {
        requests_per_window: budget.per_second * budget.window_secs,
        window_ms: u64::from(budget.window_secs) * 1_000,
        shape: budget.shape,
        max_concurrent: 8,
        retry_after_secs: None,
        penalty_ms: 0,
    };
    sc
}

/// The figures of a first run's log (killed) and the next run's (its first `after`).
pub fn figures(budget: Budget, first: &[Arrival], next: &[Arrival], after: Duration) -> Figures {
    let api = |log: &[Arrival]| -> Vec<Arrival> {
        log.iter()
            .filter(|a| a.path.starts_with("/v1/"))
            .cloned()
            .collect()
    };
    let (first, next) = (api(first), api(next));
    let t0 = first.first().map_or_else(Instant::now, |a| a.at);
    let end = first.last().map_or(t0, |a| a.at);
    let from = t0 + Duration::from_secs(90);
    let clean_after = first.iter().filter(|a| a.at >= from && a.status != 429).count();
    let span = end.saturating_duration_since(from).as_secs_f64().max(1.0);
    let refused: Vec<f64> = first
        .iter()
        .filter(|a| a.status == 429)
        .map(|a| a.at.duration_since(t0).as_secs_f64())
        .collect();
    let n0 = next.first().map_or_else(Instant::now, |a| a.at);
    let next_clean = next
        .iter()
        .filter(|a| a.at < n0 + after && a.status != 429)
        .count();
    Figures {
        budget,
        share_after_90s: clean_after as f64 / span / f64::from(budget.per_second),
        first_429s: refused.len(),
        first_bursts: refused
            .iter()
            .enumerate()
            .filter(|(i, at)| *i == 0 || **at - refused[i - 1] > 5.0)
            .count(),
        first_429_at: refused.first().copied(),
        last_429_at: refused.last().copied(),
        next_share: next_clean as f64 / after.as_secs_f64() / f64::from(budget.per_second),
        next_429s: next.iter().filter(|a| a.status == 429).count(),
        requests: first.len() + next.len(),
    }
}

/// The same trial for the pace controller alone, on tokio's paused clock (the caller's runtime
/// must have it paused): back-to-back requests through `Pace`, answered by the sandbox's own
/// limiter, so the controller and the budget share one clock and no other work (SQLite, the
/// network) takes time the clock cannot see. The kill keeps what the job would have saved: the
/// pace learned at the last progress tick (every 5 s) before it.
pub async fn simulate(budget: Budget, first: Duration, after: Duration) -> Figures {
    use understory_sandbox::limits::RateLimiter;
    use understory_sync::pace::Pace;

    let dir = tempfile::tempdir().expect("tempdir");
    let sb_free = sandbox_config(budget, 0);
    let limiter = RateLimiter::new(sb_free.rate_limit.clone());
    // The job's pace settings, as `job` configures it (no sandbox is contacted).
    let settings = {
        let mut raw = RawConfig {
            database: dir.path().join("unused.sqlite"),
            ..RawConfig::default()
        };
        raw.api.base_url = "http://127.0.0.1:9/".into();
        raw.auth.token_url = "http://127.0.0.1:9/oauth2/token".into();
        raw.auth.client_id = Some("c".into());
        raw.auth.client_secret = Some(SecretString::from("s".to_owned()));
        raw.api.max_requests_per_second = 1_000;
        let cfg = config::validate(raw, &config::Environment::default(), None).expect("config");
        understory_sync::api::pace_settings(&cfg)
    };
    let mut log = Vec::new();
    let kept = drive(Pace::new(settings.clone(), None), first, &limiter, &mut log).await;
    let first_log = std::mem::take(&mut log);
    let _ = drive(Pace::new(settings, Some(kept)), after, &limiter, &mut log).await;
    figures(budget, &first_log, &log, after)
}

/// Back-to-back requests through `pace` for `secs`, answered by `limiter`, logged; returns what
/// the last progress tick saved.
async fn drive(
    pace: understory_sync::pace::Pace,
    secs: Duration,
    limiter: &understory_sandbox::limits::RateLimiter,
    log: &mut Vec<Arrival>,
) -> understory_sync::pace::Learned {
    const TICK: Duration = Duration::from_secs(5);
    let end = Instant::now() + secs;
    let mut saved = pace.learned();
    let mut next_tick = Instant::now() + TICK;
    while Instant::now() < end {
        let permit = tokio::select! {
            p = pace.admit(understory_sync::test_support::pace::Lane::FanOut) => p,
            () = tokio::time::sleep_until(end) => break,
        };
        let at = Instant::now();
        let status = match limiter.admit("job") {
            Ok(_slot) => {
                permit.success();
                200
            }
            Err(_) => {
                permit.throttled(None);
                429
            }
        };
        log.push(Arrival {
            at,
            path: "/v1/orders".into(),
            query: String::new(),
            status,
        });
        if at >= next_tick {
            saved = pace.learned();
            next_tick += TICK;
        }
    }
    saved
}

/// The trial on the real clock with the real binary (`bin`): the first run SIGKILLed after
/// `first`, the next stopped with SIGTERM after `after`; the job waits `wait_secs` after a 429
/// (the default is the docs' minute; a test may shorten it to no less than the budget's window,
/// so a pause still empties the window or refills the bucket).
pub async fn real(bin: &str, budget: Budget, first: Duration, after: Duration, wait_secs: u64) -> Figures {
    let sb = sandbox(budget, (first + after).as_secs()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("understory-sync.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"database = "{db}"
[auth]
token_url = "{token}"
client_id = "sandbox-client"
[api]
base_url = "{base}"
max_requests_per_second = 1000
[retry]
run_budget = 100000
max_attempts = 50
rate_limited_wait_secs = {wait_secs}
[streams]
bookings = false
marketing_consents = false
events = false
experiences = false
"#,
            db = dir.path().join("budget.sqlite").display(),
            token = sb.token_url(),
            base = sb.base_url(),
        ),
    )
    .expect("config");
    let start = || {
        std::process::Command::new(bin)
            .args(["sync", "--config"])
            .arg(&cfg)
            .env("UNDERSTORY_CLIENT_SECRET", "sandbox-secret")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the binary starts")
    };
    let signal = |child: &std::process::Child, sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .expect("kill");
    };
    sb.record();
    let mut run = start();
    tokio::time::sleep(first).await;
    signal(&run, "-KILL");
    let _ = run.wait();
    let first_log = sb.arrivals();
    sb.record();
    let mut next = start();
    tokio::time::sleep(after).await;
    signal(&next, "-TERM");
    let _ = next.wait();
    figures(budget, &first_log, &sb.arrivals(), after)
}
