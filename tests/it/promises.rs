//! What the README promises, each shown once: a token refused mid-run is renewed and the request
//! retried, `Retry-After` is honoured, a consent that comes back has `removed_at` cleared, a scan
//! that did not complete marks nothing removed, and `UNDERSTORY_SYNC_CONFIG` names the config.

use std::process::Command;
use std::time::Duration;
use understory_sync::test_support::config::RawStreamsExt as _;

use understory_sandbox::Fault;
use understory_sync::sync::RunStatus;

use crate::cli::{BIN, write_config};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_mid_run_is_renewed_and_the_request_retried() {
    let mut sc = small();
    sc.data.bookings = 1_000;
    sc.faults.slow = 1.0;
    sc.faults.slow_ms = 5;
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.api.page_size = 10;
    let cfg = config(raw);
    sb.record();
    let (run, ()) = tokio::join!(sync(&cfg), async {
        // Mid-run, every token issued so far stops working.
        tokio::time::sleep(Duration::from_millis(300)).await;
        sb.expire_tokens();
    });
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let refused = sb.arrivals().iter().filter(|a| a.status == 401).count();
    assert!(refused >= 1, "the API refused the expired token");
    assert_eq!(sb.issued_tokens().len(), 2, "one renewal, shared by every stream");
    assert_eq!(
        run.streams.iter().map(|s| s.counts.retries).sum::<u64>(),
        0,
        "a 401 is renewed, not retried"
    );
    assert_converged(&db, &sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_in_a_sync() {
    let mut sc = small();
    sc.rate_limit.retry_after_secs = Some(2);
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let cfg = config(raw_config(&sb, &db)); // waits 1 s when no Retry-After is sent
    sb.inject_after(3, Fault::RateLimited, 1);
    sb.record();
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(
        (run.pace.rate_limited, run.pace.paused_ms),
        (1, 2_000),
        "{:?}",
        run.pace
    );
    // From the server's side: after the 429, only requests that were already on their way
    // (at most the concurrency cap, within moments), then nothing for two seconds: every
    // stream paused. Then the sync went on.
    let log = sb.arrivals();
    let at = log
        .iter()
        .position(|a| a.status == 429)
        .expect("the sandbox answered a 429");
    let after: Vec<std::time::Duration> = log[at + 1..]
        .iter()
        .map(|a| a.at.duration_since(log[at].at))
        .collect();
    let pause = std::time::Duration::from_millis(1_950);
    let in_flight: Vec<_> = after.iter().filter(|d| **d < pause).collect();
    assert!(
        in_flight.len() < 8
            && in_flight
                .iter()
                .all(|d| **d < std::time::Duration::from_millis(300)),
        "requests during the pause: {in_flight:?}"
    );
    assert!(
        after.iter().any(|d| *d >= pause),
        "the sync went on after the pause"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_that_comes_back_has_removed_at_cleared_and_an_incomplete_scan_removes_nothing() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.streams = understory_sync::config::RawStreams::only(&["marketing_consents"]);
    raw.api.page_size = 10;
    raw.retry.run_budget = 0;
    let cfg = config(raw);
    sync(&cfg).await;
    // As if an earlier run had seen it gone: the API lists it, so the next scan brings it back.
    let c = open(&db);
    let key: String = c
        .query_row("SELECT consent_key FROM marketing_consents LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    c.execute(
        "UPDATE marketing_consents SET removed_at = '2026-01-01T00:00:00.000Z' WHERE consent_key = ?1",
        [&key],
    )
    .unwrap();
    let run = sync(&cfg).await;
    assert_eq!(stream(&run, "marketing_consents").counts.updated, 1, "{run:?}");
    let removed: Option<String> = c
        .query_row(
            "SELECT removed_at FROM marketing_consents WHERE consent_key = ?1",
            [&key],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(removed, None);

    // Consents vanish, then a scan dies on its third page: nothing is marked removed.
    sb.mutate(5);
    sb.inject_after(2, Fault::Status(503), 1);
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    let marked: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM marketing_consents WHERE removed_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(marked, 0, "an incomplete scan cannot tell what is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn understory_sync_config_names_the_config_file() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let out = Command::new(BIN)
        .arg("sync")
        .env("UNDERSTORY_SYNC_CONFIG", &cfg)
        .env("UNDERSTORY_CLIENT_SECRET", "sandbox-secret")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_converged(&dir.path().join("sync.sqlite"), &sb);
}
