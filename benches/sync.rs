//! End to end: how fast the sync consumes the sandbox (in-process, over loopback), with the
//! client-side limiter opened wide so the figure is the job's own cost. Prints figures only.

mod common;

use std::net::SocketAddr;
use std::time::Instant;

use understory_sandbox::{Sandbox, SandboxConfig};
use understory_sync::config;
use understory_sync::shutdown::Stop;
use understory_sync::test_support;

const BOOKINGS: u32 = 10_000;

#[tokio::main]
async fn main() {
    let mut sc = SandboxConfig::default();
    sc.data.bookings = BOOKINGS;
    sc.data.consents = BOOKINGS / 4;
    sc.rate_limit.requests_per_window = u32::MAX;
    let sb = Sandbox::start(sc, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut raw = common::raw_config(&sb, &dir.path().join("bench.sqlite"));
    raw.api.requests_per_second = 1_000_000;
    raw.api.max_requests_per_second = 1_000_000;
    raw.api.burst = 10_000;
    raw.api.max_concurrent = 16;
    let cfg = config::validate(raw, &config::Environment::default(), None).expect("config");

    println!(
        "sync benchmark ({BOOKINGS} bookings and orders, {} consents)",
        BOOKINGS / 4
    );
    for (label, mutate) in [
        ("first run (bootstrap)", false),
        ("unchanged run", false),
        ("after one mutation", true),
    ] {
        if mutate {
            sb.mutate(1);
        }
        let before = sb.requests();
        let t = Instant::now();
        let report = test_support::sync::run(&cfg, Stop::never()).await.expect("sync");
        let secs = t.elapsed().as_secs_f64();
        let total = report.total();
        let rows = total.inserted + total.updated + total.unchanged;
        let pages: u64 = report.streams.iter().map(|s| s.counts.pages).sum();
        let requests = sb.requests() - before;
        println!(
            "  {label:<22} {secs:>7.2} s  {:>9.0} rows/s  {:>7.0} list pages/s  {:>7.0} requests/s  ({requests} requests, {} written)",
            rows as f64 / secs,
            pages as f64 / secs,
            requests as f64 / secs,
            total.inserted + total.updated
        );
    }
}
