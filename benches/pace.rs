//! The pace against budgets it is not told, one per window shape (a fixed 1-s window, a sliding
//! 10-s window, a token bucket of 20 s of capacity, each at 40 requests/s): a first load killed
//! after 10 minutes, then the next run's first 2.5 minutes. Every figure comes from the sandbox's
//! request log: the first run's share of the budget from 90 s on, its 429s, when the first and
//! the last came; the next run's share and 429s. Prints figures only (nothing is asserted here;
//! `tests/it/budget.rs` holds the goals).
//!
//! `cargo bench --bench pace`, in two parts:
//! - **paused clock**: the pace controller alone against the sandbox's own limiter, on tokio's
//!   paused clock (seconds for all three shapes). Honest because the controller and the budget
//!   share that clock and nothing else takes time; the whole job is not run this way, since its
//!   SQLite writer is a thread of its own whose work the paused clock skips over.
//! - **real clock**: the real binary against the sandbox, SIGKILLed after the first run, the
//!   three shapes side by side (12.5 minutes; `PACE_BENCH_REAL=fixed|sliding|bucket|none`
//!   picks one or none).
//!
//! `PACE_BENCH_FIRST_SECS` and `PACE_BENCH_AFTER_SECS` set the two runs' lengths (600, 150).

mod common;

use std::time::Duration;

use common::budget_trial::{self, Budget, Figures};
use understory_sandbox::config::WindowShape;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Ok(filter) = std::env::var("PACE_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .without_time()
            .init();
    }
    let first = Duration::from_secs(env_or("PACE_BENCH_FIRST_SECS", 600));
    let after = Duration::from_secs(env_or("PACE_BENCH_AFTER_SECS", 150));
    println!(
        "pace benchmark: orders with sub-resources against a hidden budget; bare 429s; the job waits its default minute after one; first run killed at {} s, the next measured over {} s",
        first.as_secs(),
        after.as_secs()
    );
    println!(
        "  {:<16} {:<6}  {:>13}  {:>10}  {:>10}  {:>10}  {:>15}  {:>14}  {:>9}",
        "budget",
        "clock",
        "share ≥ 90 s",
        "429s",
        "first 429",
        "last 429",
        "next run share",
        "next run 429s",
        "requests"
    );
    // `PACE_BENCH_BUDGETS=sliding:2:10,bucket:60:40` (shape:window seconds:requests/s) runs
    // other budgets on the paused clock instead of the three.
    let budgets: Vec<Budget> = std::env::var("PACE_BENCH_BUDGETS").map_or_else(
        |_| Budget::three().to_vec(),
        |list| list.split(',').filter_map(Budget::parse).collect(),
    );
    for budget in budgets {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        let f = rt.block_on(budget_trial::simulate(budget, first, after));
        print(&f, "paused");
    }
    let real = std::env::var("PACE_BENCH_REAL").unwrap_or_else(|_| "all".into());
    let picked: Vec<Budget> = Budget::three()
        .into_iter()
        .filter(|b| match real.as_str() {
            "all" => true,
            "fixed" => b.shape == WindowShape::Fixed,
            "sliding" => b.shape == WindowShape::Sliding,
            "bucket" => b.shape == WindowShape::TokenBucket,
            _ => false,
        })
        .collect();
    if !picked.is_empty() {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let all = rt.block_on(futures::future::join_all(picked.into_iter().map(|b| {
            budget_trial::real(env!("CARGO_BIN_EXE_understory-sync"), b, first, after, 60)
        })));
        for f in &all {
            print(f, "real");
        }
    }
}

fn print(f: &Figures, clock: &str) {
    let at = |s: Option<f64>| s.map_or_else(|| "-".to_owned(), |s| format!("{s:.0} s"));
    println!(
        "  {:<16} {:<6}  {:>12.1}%  {:>10}  {:>10}  {:>10}  {:>14.1}%  {:>14}  {:>9}",
        f.budget.name(),
        clock,
        f.share_after_90s * 100.0,
        f.first_429s,
        at(f.first_429_at),
        at(f.last_429_at),
        f.next_share * 100.0,
        f.next_429s,
        f.requests
    );
}
