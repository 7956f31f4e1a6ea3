//! The adaptive pace against budgets it is not told: how close to the budget it runs after the
//! first minute and how often it draws a 429 then (per 10 minutes), all 429s, and how long it
//! spent paused; then a second run that starts at the learned pace. Prints figures only (the machine is shared; nothing is asserted).
//!
//! `cargo bench --bench pace` (about 10 minutes); `PACE_BENCH_SECS=N` sets each run's length
//! (default 180), `PACE_BENCH_BUDGETS=20,80` the budgets.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use understory_sync::config;
use understory_sync::sandbox::config::RateLimitConfig;
use understory_sync::sandbox::{Sandbox, SandboxConfig};
use understory_sync::{shutdown, sync};

/// The sandbox's refusal lasts this long after a 429, and the job waits as long (loopback only;
/// the real API asks for a minute).
const PENALTY_SECS: u64 = 10;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let secs: u64 = env_or("PACE_BENCH_SECS", 180);
    let budgets: Vec<u32> = std::env::var("PACE_BENCH_BUDGETS")
        .unwrap_or_else(|_| "20,80".into())
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .collect();
    println!(
        "pace benchmark: orders with sub-resources against a hidden budget; {secs} s a run, 429s answered with no headers, {PENALTY_SECS} s penalty"
    );
    println!(
        "  {:>6}  {:<6}  {:>6}  {:>10}  {:>14}  {:>10}  {:>10}  {:>9}  {:>9}",
        "budget",
        "run",
        "start",
        "end pace",
        "share after 1m",
        "429s/10min",
        "429s (all)",
        "paused s",
        "requests"
    );
    for budget in budgets {
        let mut sc = SandboxConfig::default();
        // More orders than any run can finish: the job is never out of work.
        sc.data.bookings = (budget * secs as u32 / 2).max(2_000);
        sc.data.consents = 10;
        sc.rate_limit = RateLimitConfig {
            requests_per_window: budget,
            window_ms: 1_000,
            shape: Default::default(),
            max_concurrent: 8,
            retry_after_secs: None,
            penalty_ms: PENALTY_SECS * 1_000,
        };
        let sb = Sandbox::start(sc, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("sandbox");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut raw = common::raw_config(&sb, &dir.path().join("bench.sqlite"));
        raw.api.requests_per_second = 5;
        raw.api.max_requests_per_second = 10_000;
        raw.api.burst = 1;
        raw.api.max_concurrent = 4;
        raw.retry.rate_limited_wait_secs = PENALTY_SECS;
        raw.retry.run_budget = 100_000;
        raw.retry.max_attempts = 50;
        raw.streams.set("bookings", false);
        raw.streams.set("marketing_consents", false);
        let cfg = config::validate(raw, &config::Environment::default(), None).expect("config");
        for label in ["first", "second"] {
            sb.record();
            let (trigger, stop) = shutdown::channel();
            let started = Instant::now();
            let stopper = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                trigger.stop();
            });
            let report = sync::run(&cfg, stop).await.expect("sync");
            stopper.abort();
            let elapsed = started.elapsed().as_secs_f64();
            let log = sb.arrivals();
            let minute = started + Duration::from_secs(60);
            let served_after = log.iter().filter(|a| a.at >= minute && a.status != 429).count() as f64;
            let limited_after = log.iter().filter(|a| a.at >= minute && a.status == 429).count() as f64;
            let limited = log.iter().filter(|a| a.status == 429).count();
            let share = served_after / (elapsed - 60.0).max(1.0) / f64::from(budget);
            println!(
                "  {budget:>6}  {label:<6}  {:>6.1}  {:>10.1}  {:>13.0}%  {:>10.1}  {:>10}  {:>9.1}  {:>9}",
                report.pace.start_rate,
                report.pace.rate,
                share * 100.0,
                limited_after * 600.0 / (elapsed - 60.0).max(1.0),
                limited,
                report.pace.paused_ms as f64 / 1000.0,
                log.len()
            );
        }
    }
}
