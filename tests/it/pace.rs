//! The adaptive pace against the sandbox's hidden budget: one 429 pauses every stream, the token
//! endpoint's 429s and 5xx are retried like any other, a dead token endpoint fails the run once,
//! and the learned pace carries over to the next run.

use std::process::Command;
use std::time::Duration;

use understory_sync::sandbox::Fault;
use understory_sync::sandbox::config::RateLimitConfig;
use understory_sync::shutdown::Stop;
use understory_sync::sync::{self, RunStatus};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_learned_pace_is_where_the_next_run_starts() {
    let mut sc = small();
    sc.data.bookings = 3_000;
    sc.rate_limit = RateLimitConfig {
        requests_per_window: 40,
        window_ms: 1_000,
        max_concurrent: 8,
        retry_after_secs: None,
        penalty_ms: 1_000,
    };
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.api.requests_per_second = 20;
    raw.api.burst = 1;
    raw.api.page_size = 20;
    raw.streams.set("orders", false);
    raw.retry.max_attempts = 20;
    raw.retry.run_budget = 1_000;
    let cfg = config(raw);
    let first = sync(&cfg).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert!(
        first.pace.rate_limited >= 1,
        "the budget was found: {:?}",
        first.pace
    );
    let ceiling = first.pace.ceiling.expect("a ceiling was learned");
    assert!(
        ceiling < 60.0,
        "the ceiling is near the budget of 40/s: {ceiling}"
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
    sb.mutate(1);
    let second = sync::run(&cfg, Stop::never()).await.unwrap();
    assert_eq!(second.pace.start_rate, rate, "{:?}", second.pace);

    let status = Command::new(BIN)
        .args(["status", "--database"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("429s") && text.contains("pace"),
        "{text}{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_keeps_the_pace_it_learned() {
    let mut sc = small();
    sc.data.bookings = 3_000;
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
    let mut child = cmd.spawn().unwrap();
    // Slow start doubles the pace every 2 s while answers are clean; wait until the kept pace
    // has grown past the configured start, then kill the run as a reboot would.
    let kept = || -> Option<f64> {
        open(&db)
            .query_row("SELECT rate FROM pace_state", [], |r| r.get(0))
            .ok()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while kept().is_none_or(|r| r < 10.0) && std::time::Instant::now() < deadline {
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
    let rate = kept().expect("the learned pace was kept while the run went on");
    assert!(rate >= 10.0, "{rate}");
    let status: String = open(&db)
        .query_row("SELECT status FROM sync_runs ORDER BY id DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(status, "running", "killed, not finished");
    // The next run starts where the killed one had got to, not at the configured 5 req/s.
    let mut raw = raw_config(&sb, &db);
    raw.api.requests_per_second = 5;
    raw.api.max_requests_per_second = 200;
    raw.streams.set("orders", false);
    let next = sync::run(&config(raw), Stop::never()).await.unwrap();
    assert_eq!(next.pace.start_rate, rate, "{:?}", next.pace);
}
