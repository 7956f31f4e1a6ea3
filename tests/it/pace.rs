//! The adaptive pace against the sandbox's hidden budget: one 429 pauses every stream, the token
//! endpoint's 429s and 5xx are retried like any other, a dead token endpoint fails the run once,
//! and the learned pace carries over to the next run.

use std::process::Command;
use std::time::Duration;

use understory_sandbox::Fault;
use understory_sandbox::config::{FaultConfig, RateLimitConfig};
use understory_sync::shutdown::Stop;
use understory_sync::sync::RunStatus;
use understory_sync::test_support;

use crate::cli::{BIN, sync_cmd, write_config};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_one_stream_pauses_every_stream() {
    let mut sc = small();
    sc.data.bookings = 1_500;
    sc.data.consents = 600;
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.api.page_size = 20;
    raw.retry.rate_limited_wait_secs = 2;
    let cfg = config(raw);
    sb.record();
    // The 30th request is refused, well before any stream is done.
    sb.inject_after(30, Fault::RateLimited, 1);
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.pace.rate_limited, 1, "{:?}", run.pace);
    assert_eq!(run.pace.paused_ms, 2_000, "{:?}", run.pace);
    let log = sb.arrivals();
    let refused = log
        .iter()
        .find(|a| a.status == 429)
        .expect("the 429 is in the log");
    // Requests already on the wire when the 429 left may still land; nothing is sent after.
    let quiet = refused.at + Duration::from_millis(150)..refused.at + Duration::from_millis(1_900);
    let during: Vec<_> = log.iter().filter(|a| quiet.contains(&a.at)).collect();
    assert!(during.is_empty(), "requests during the pause: {during:?}");
    let after: std::collections::BTreeSet<&str> = log
        .iter()
        .filter(|a| a.at > quiet.end && a.path.starts_with("/v1/"))
        .map(|a| a.path.as_str())
        .filter(|p| {
            [
                "/v1/bookings",
                "/v1/marketing-consents",
                "/v1/events",
                "/v1/orders",
            ]
            .contains(p)
        })
        .collect();
    assert!(
        after.len() >= 2,
        "several streams resumed after the pause: {after:?}"
    );
    assert_converged(&db, &sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoints_429s_and_5xx_are_retried_not_an_auth_failure() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let cfg = config(raw_config(&sb, &db));
    sb.inject_token(Fault::RateLimited, 1);
    sb.inject_token(Fault::Status(503), 2);
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.pace.rate_limited, 1, "{:?}", run.pace);
    assert_converged(&db, &sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_token_endpoint_fails_the_run_once_before_any_stream() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1 of loopback.
    let extra = "[auth]\ntoken_url = \"http://127.0.0.1:1/oauth2/token\"\n";
    let cfg = write_config(dir.path(), &sb, "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("token_url = \"{}\"", sb.token_url()),
        extra.trim_start_matches("[auth]\n").trim(),
    );
    std::fs::write(&cfg, text).unwrap();
    sb.record();
    let out = sync_cmd(&cfg, "sandbox-secret").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line, not one per stream: {err}");
    assert!(errors[0].contains("token endpoint"), "{}", errors[0]);
    assert!(sb.arrivals().is_empty(), "no stream started");

    // A refused key is one line too, and exit 3.
    let cfg = write_config(dir.path(), &sb, "");
    let out = sync_cmd(&cfg, "wrong").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
}

/// The hidden budget the pace tests' sandbox enforces: 40 requests in any one-second window.
const BUDGET: f64 = 40.0;

fn budgeted() -> understory_sandbox::SandboxConfig {
    let mut sc = small();
    sc.data.bookings = 3_000;
    sc.rate_limit = RateLimitConfig {
        requests_per_window: BUDGET as u32,
        window_ms: 1_000,
        shape: Default::default(),
        max_concurrent: 8,
        retry_after_secs: None,
        penalty_ms: 1_000,
    };
    sc
}

/// What the sandbox saw of one run: its `/v1` requests, how many were refused with 429, and
/// their rate (requests over the span from the first to the last).
struct Seen {
    requests: usize,
    refused: usize,
    rate: f64,
    /// Requests in the run's first two seconds.
    first_two_secs: usize,
}

fn seen(log: &[understory_sandbox::Arrival]) -> Seen {
    let api: Vec<_> = log.iter().filter(|a| a.path.starts_with("/v1/")).collect();
    let (first, last) = (api[0].at, api[api.len() - 1].at);
    let span = last.duration_since(first).as_secs_f64().max(1e-3);
    Seen {
        requests: api.len(),
        refused: api.iter().filter(|a| a.status == 429).count(),
        rate: api.len() as f64 / span,
        first_two_secs: api
            .iter()
            .filter(|a| a.at.duration_since(first) < Duration::from_secs(2))
            .count(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_learned_pace_is_where_the_next_run_starts() {
    let sb = start(budgeted()).await;
    let (_dir, db) = temp_db();
    // The first run loads the bookings; the second, configured the same but for the orders, is
    // a first load of the orders: a long list read at the pace the first run learned.
    let raw = |orders: bool| {
        let mut raw = raw_config(&sb, &db);
        raw.api.requests_per_second = 5;
        raw.api.burst = 1;
        raw.api.page_size = 20;
        for s in ["order_line_items", "order_transactions", "order_refunds"] {
            raw.streams.set(s, false);
        }
        raw.streams.set("orders", orders);
        raw.retry.max_attempts = 20;
        raw.retry.run_budget = 1_000;
        raw
    };
    let first = sync(&config(raw(false))).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert!(
        first.pace.rate_limited >= 1,
        "the budget was found: {:?}",
        first.pace
    );
    let ceiling = first.pace.ceiling.expect("a ceiling was learned");
    assert!(
        (0.5 * BUDGET..1.5 * BUDGET).contains(&ceiling),
        "the ceiling is near the budget of {BUDGET}/s: {ceiling}"
    );
    let (rate, stored_ceiling): (f64, Option<f64>) = open(&db)
        .query_row("SELECT rate, ceiling FROM pace_state", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    // The pace kept for the next run never exceeds the learned ceiling.
    assert_eq!(
        (rate, stored_ceiling),
        (first.pace.rate.min(ceiling), Some(ceiling))
    );
    let (pace, paused): (f64, i64) = open(&db)
        .query_row(
            "SELECT pace_rps, paused_ms FROM sync_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((pace, paused as u64), (first.pace.rate, first.pace.paused_ms));

    // A second run with a long list to read (the orders, first loaded now), configured to
    // start at 5/s again: from the server's side it runs at the learned pace, uses most of the
    // budget, and is never refused.
    sb.record();
    let second = test_support::sync::run(&config(raw(true)), Stop::never())
        .await
        .unwrap();
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    assert_eq!(second.pace.start_rate, rate, "{:?}", second.pace);
    let s = seen(&sb.arrivals());
    assert_eq!(s.refused, 0, "the second run drew 429s");
    assert!(s.requests >= 150, "a long enough run to measure: {}", s.requests);
    assert!(
        s.rate >= 0.5 * BUDGET && s.rate <= BUDGET,
        "the second run used {:.0} % of the budget ({:.1}/s of {BUDGET}/s)",
        100.0 * s.rate / BUDGET,
        s.rate
    );

    let status = Command::new(BIN)
        .args(["status", "--database"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    let newest = text
        .lines()
        .find(|l| l.trim_start().starts_with('#'))
        .unwrap_or_default();
    assert!(
        newest.contains("429s 0 paused 0s") && newest.contains(&format!("pace {:.1}/s", second.pace.rate)),
        "{text}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let oldest = text
        .lines()
        .rfind(|l| l.trim_start().starts_with('#'))
        .unwrap_or_default();
    assert!(
        oldest.contains(&format!("429s {} ", first.pace.rate_limited)),
        "{text}"
    );
    // The learned budget, and the share of it the newest run used (its requests over its
    // length, as the sandbox counted them within a request or two).
    let budget: f64 = open(&db)
        .query_row("SELECT ceiling FROM pace_state", [], |r| r.get(0))
        .unwrap();
    let line = text.lines().find(|l| l.starts_with("pace: ")).unwrap_or_default();
    assert!(
        line.starts_with(&format!("pace: learned budget {budget:.1} requests/s")),
        "{text}"
    );
    let used: f64 = line
        .split("the newest run sent ")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        (0.5 * s.rate..=1.2 * s.rate).contains(&used),
        "status says {used}/s, the sandbox saw {:.1}/s: {text}",
        s.rate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_keeps_the_pace_it_learned() {
    let mut sc = budgeted();
    sc.data.bookings = 4_000;
    let sb = start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::cli::write_config(dir.path(), &sb, "");
    let db = dir.path().join("sync.sqlite");
    let mut cmd = sync_cmd(&cfg, "sandbox-secret");
    cmd.env("UNDERSTORY_SYNC__API__REQUESTS_PER_SECOND", "5")
        .env("UNDERSTORY_SYNC__API__MAX_REQUESTS_PER_SECOND", "200")
        .env("UNDERSTORY_SYNC__API__BURST", "1")
        .env("UNDERSTORY_SYNC__API__PAGE_SIZE", "10")
        .env("UNDERSTORY_SYNC__SYNC__PROGRESS_SECS", "1")
        .env("UNDERSTORY_SYNC__STREAMS__ORDERS", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    sb.record();
    let mut child = cmd.spawn().unwrap();
    // Slow start doubles the pace every 2 s while answers are clean, until the budget answers
    // 429; wait until the kept pace has a learned ceiling and has grown past the configured
    // start, then kill the run as a reboot would.
    let kept = || -> Option<(f64, Option<f64>)> {
        open(&db)
            .query_row("SELECT rate, ceiling FROM pace_state", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .ok()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while kept().is_none_or(|(r, c)| r < 20.0 || c.is_none()) && std::time::Instant::now() < deadline {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its pace grew"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    // The killed run drew the 429 that taught it the ceiling. The sandbox refuses everything
    // for `penalty_ms` after a 429 and counts requests per one-second window; the real API asks
    // for a minute. The next run is started once both have passed since that 429, and a window
    // since the killed run's last request (a restart sooner would be refused for the killed
    // run's requests, not for its own pace).
    let log = sb.arrivals();
    let last_429 = log
        .iter()
        .filter(|a| a.status == 429)
        .map(|a| a.at)
        .max()
        .expect("the killed run drew a 429");
    let last = log.iter().map(|a| a.at).max().unwrap_or(last_429);
    let quiet = (last_429 + Duration::from_millis(1_000 + 1_000)).max(last + Duration::from_millis(1_000));
    tokio::time::sleep(quiet.saturating_duration_since(tokio::time::Instant::now())).await;
    let (rate, ceiling) = kept().expect("the learned pace was kept while the run went on");
    assert!(rate >= 20.0 && ceiling.is_some(), "{rate} {ceiling:?}");
    let status: String = open(&db)
        .query_row("SELECT status FROM sync_runs ORDER BY id DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(status, "running", "killed, not finished");
    // The next run starts where the killed one had got to, not at the configured 5 req/s, and
    // the server refuses none of its requests.
    let mut raw = raw_config(&sb, &db);
    raw.api.requests_per_second = 5;
    raw.api.max_requests_per_second = 200;
    raw.api.burst = 1;
    raw.api.page_size = 10;
    raw.streams.set("orders", false);
    sb.record();
    let next = test_support::sync::run(&config(raw), Stop::never())
        .await
        .unwrap();
    assert_eq!(next.status, RunStatus::Succeeded, "{next:?}");
    assert_eq!(next.pace.start_rate, rate, "{:?}", next.pace);
    let log = sb.arrivals();
    let s = seen(&log);
    let t0 = log[0].at;
    let refused: Vec<_> = log
        .iter()
        .filter(|a| a.status == 429)
        .map(|a| a.at.duration_since(t0))
        .collect();
    assert_eq!(
        s.refused, 0,
        "the next run drew 429s at {refused:?}, kept pace {rate} ceiling {ceiling:?}, {} requests at {:.1}/s: {:?}",
        s.requests, s.rate, next.pace
    );
    // At the configured 5/s its first two seconds would hold about a dozen requests; at the
    // kept pace (20/s or more), at least twice that.
    assert!(
        s.first_two_secs as f64 >= 0.6 * 2.0 * rate,
        "{} requests in the first two seconds at a kept pace of {rate:.1}/s",
        s.first_two_secs
    );
}

/// The requests per second of the last `n` `/v1` requests in `log` (over their span).
fn tail_rate(log: &[understory_sandbox::Arrival], n: usize) -> f64 {
    let api: Vec<_> = log.iter().filter(|a| a.path.starts_with("/v1/")).collect();
    let tail = &api[api.len().saturating_sub(n)..];
    let span = tail[tail.len() - 1].at.duration_since(tail[0].at).as_secs_f64();
    tail.len() as f64 / span.max(1e-3)
}

/// One run against an API that answers every other request 429 drives the pace to a crawl;
/// the clean runs after it must not stay there. The next run starts at the crawl (its kept
/// ceiling), and after one clean spell (the configured penalty, 1 s on loopback) climbs back to
/// the rate the API answered clean before the flood, within that run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_under_a_flood_of_429s_does_not_slow_the_clean_runs_after_it() {
    let mut sc = small();
    // Consents are scanned whole every run: 300 pages of 10, so each run has work to pace.
    sc.data.consents = 3_000;
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let raw = || {
        let mut raw = raw_config(&sb, &db);
        raw.api.requests_per_second = 50;
        raw.api.max_requests_per_second = 50;
        raw.api.burst = 1;
        raw.api.page_size = 10;
        raw.streams.set("orders", false);
        raw.retry.max_attempts = 1_000;
        raw.retry.run_budget = 100_000;
        raw
    };
    // A run that stops itself after `secs`, as a unit's timeout would.
    let run_for = |secs: u64| {
        let cfg = config(raw());
        async move {
            let (trigger, stop) = understory_sync::shutdown::channel();
            let timer = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                trigger.stop();
            });
            let run = test_support::sync::run(&cfg, stop).await.unwrap();
            timer.abort();
            run
        }
    };

    // Clean: the pace the API answers clean.
    sb.record();
    let clean = sync(&config(raw())).await;
    assert_eq!(clean.status, RunStatus::Succeeded, "{clean:?}");
    let before = seen(&sb.arrivals());
    assert!(before.requests >= 300 && before.refused == 0);
    assert!(
        clean.pace.proven.is_some_and(|p| p >= 0.75 * 50.0),
        "{:?}",
        clean.pace
    );

    // Every other request refused for 12 s: a cut a second, the pace down to a crawl.
    sb.set_faults(FaultConfig {
        rate_limited_every: 2,
        ..FaultConfig::default()
    });
    let flooded = run_for(12).await;
    assert!(flooded.pace.rate_limited >= 8, "{:?}", flooded.pace);
    let crawl = flooded.pace.rate.min(flooded.pace.ceiling.unwrap_or(f64::MAX));
    assert!(
        crawl < 0.2 * before.rate,
        "the flood slowed the run: {:?}",
        flooded.pace
    );

    // Clean again: the next run starts at the crawl and heals within itself.
    sb.set_faults(FaultConfig::default());
    sb.record();
    let healed = run_for(60).await;
    assert_eq!(healed.status, RunStatus::Succeeded, "{healed:?}");
    assert_eq!(healed.pace.start_rate, crawl, "{:?}", healed.pace);
    let log = sb.arrivals();
    let after = seen(&log);
    let tail = tail_rate(&log, 150);
    assert_eq!(after.refused, 0);
    assert!(
        tail >= 0.75 * before.rate,
        "the clean run after the flood reached {tail:.1} requests/s over its last 150 requests, against {:.1}/s before the flood (it started at {crawl:.2}/s): {:?}",
        before.rate,
        healed.pace
    );
    let kept: f64 = open(&db)
        .query_row("SELECT rate FROM pace_state", [], |r| r.get(0))
        .unwrap();
    assert!(kept >= 0.75 * before.rate, "the next run starts healed: {kept}");
}
