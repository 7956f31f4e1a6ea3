//! Issue 3: the sync job against the in-process sandbox, into real SQLite files.

use secrecy::SecretString;
use understory_sandbox::Fault;
use understory_sandbox::config::{ClientKey, FaultConfig, RateLimitConfig};
use understory_sync::shutdown::Stop;
use understory_sync::sync::{self, RunStatus};
use understory_sync::test_support;
use understory_sync::test_support::config::RawStreamsExt as _;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_equals_the_ground_truth_and_a_second_run_writes_nothing() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let cfg = config(raw_config(&sb, &db));
    let first = sync(&cfg).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert_converged(&db, &sb);
    assert!(stream(&first, "bookings").counts.inserted == 240);
    // Its catch-up page lists the newest bookings again, moments after the load stored them:
    // not rows listed again since an earlier run.
    for s in &first.streams {
        assert_eq!(s.counts.unchanged, 0, "{s:?}");
    }
    assert_eq!(
        sb.gzip_requests(),
        sb.requests(),
        "every request accepted gzip, and the answers were read"
    );

    let before = fingerprint(&db);
    let second = sync(&cfg).await;
    assert_eq!(second.status, RunStatus::Succeeded);
    assert_eq!(
        fingerprint(&db),
        before,
        "an unchanged run must not rewrite any row"
    );
    let total = second.total();
    assert_eq!(
        (total.inserted, total.updated, total.removed),
        (0, 0, 0),
        "{second:?}"
    );
    // With nothing changed, an incremental stream asks for one page (its newest items are all
    // older than the high-water mark) and a scan lists its (small) list once: one request each,
    // and no per-parent list is asked for.
    for s in &second.streams {
        let list =
            understory_sync::test_support::streams::by_name(s.stream).is_some_and(|k| k.parent().is_none());
        assert_eq!(s.counts.requests, u64::from(list), "{s:?}");
    }
    let runs: i64 = open(&db)
        .query_row(
            "SELECT COUNT(*) FROM sync_runs WHERE status = 'succeeded'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(runs, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_mutations_an_incremental_run_converges_including_consent_removals() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let cfg = config(raw_config(&sb, &db));
    sync(&cfg).await;
    sb.mutate(3);
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_converged(&db, &sb);
    assert!(stream(&run, "bookings").counts.updated > 0 && stream(&run, "bookings").counts.inserted > 0);
    assert!(
        stream(&run, "marketing_consents").counts.removed > 0,
        "removed consents are marked"
    );
    // Only what changed was walked: far fewer booking pages than a full crawl of ~250 rows.
    assert!(
        stream(&run, "bookings").counts.pages < 3,
        "{:?}",
        stream(&run, "bookings")
    );
    let removed: i64 = open(&db)
        .query_row(
            "SELECT COUNT(*) FROM marketing_consents WHERE removed_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(removed > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_expiring_tokens_429s_5xx_resets_and_malformed_pages() {
    let mut sc = small();
    sc.faults = FaultConfig {
        status_500: 0.02,
        status_502: 0.02,
        status_503: 0.02,
        reset: 0.02,
        truncated: 0.02,
        malformed: 0.02,
        ..FaultConfig::default()
    };
    sc.token_ttl_secs = 1;
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.retry.run_budget = 10_000;
    raw.retry.max_attempts = 10;
    let cfg = config(raw);
    // Tokens live one second, so they expire mid-run; a 429 burst lands mid-run too.
    sb.inject_after(50, Fault::RateLimited, 2);
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let retries: u64 = run.streams.iter().map(|s| s.counts.retries).sum();
    let limited: u64 = run.streams.iter().map(|s| s.counts.rate_limited).sum();
    assert!(retries > 10, "faults were retried: {retries}");
    assert!(limited >= 2, "429s were seen and waited out: {limited}");
    assert!(sb.issued_tokens().len() > 1, "the short-lived token was renewed");
    sb.set_faults(FaultConfig::default());
    sb.expire_tokens();
    sb.mutate(1);
    let run = sync(&cfg).await;
    assert_eq!(
        run.status,
        RunStatus::Succeeded,
        "a refused token is renewed once: {run:?}"
    );
    assert_converged(&db, &sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_side_rate_limit_is_waited_out() {
    let sb = start(small()).await;
    sb.set_rate_limit(RateLimitConfig {
        requests_per_window: 30,
        window_ms: 1_000,
        shape: Default::default(),
        max_concurrent: 4,
        retry_after_secs: None,
        penalty_ms: 0,
    });
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.streams.set("orders", false);
    raw.api.requests_per_second = 100;
    raw.api.burst = 1;
    raw.api.page_size = 5;
    raw.retry.run_budget = 1_000;
    raw.retry.max_attempts = 20;
    let run = sync(&config(raw)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert!(
        run.pace.rate_limited >= 1,
        "the budget was reached: {:?}",
        run.pace
    );
    assert!(run.pace.paused_ms >= 1_000, "and waited out: {:?}", run.pace);
    assert!(
        run.pace.rate < run.pace.peak_rate,
        "and the pace was cut: {:?}",
        run.pace
    );
    let truth = sb.truth();
    assert_eq!(stored(&db).rows("bookings"), truth.rows("bookings"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_api_fails_the_run_clearly_and_keeps_what_was_stored() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.retry.run_budget = 5;
    let cfg = config(raw);
    sync(&cfg).await;
    let before = fingerprint(&db);
    sb.set_faults(FaultConfig {
        status_503: 1.0,
        ..FaultConfig::default()
    });
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = stream(&run, "bookings").error.clone().unwrap();
    assert!(err.contains("v1/bookings") && err.contains("503"), "{err}");
    assert!(!err.contains("sbx."), "no token in errors: {err}");
    assert_eq!(fingerprint(&db), before, "a failed run loses and changes nothing");
    let (status, error): (String, String) = open(&db)
        .query_row(
            "SELECT status, error FROM sync_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "failed");
    assert!(error.contains("503"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_expired_between_runs_restarts_the_pass_from_the_high_water_mark() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    // The bootstrap pass dies after a few pages, leaving a cursor in its checkpoint.
    let cfg = interrupted_bookings_pass(&sb, &db, 4).await;
    let (cursor, pages): (Option<String>, i64) = open(&db)
        .query_row(
            "SELECT cursor, pass_pages FROM sync_state WHERE stream = 'bookings'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        cursor.is_some() && pages >= 2,
        "a cursor was checkpointed after {pages} pages"
    );

    sb.expire_cursors();
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(stored(&db).rows("bookings"), sb.truth().rows("bookings"));
    let (hwm, cursor): (Option<String>, Option<String>) = open(&db)
        .query_row(
            "SELECT high_water_mark, cursor FROM sync_state WHERE stream = 'bookings'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(hwm.is_some() && cursor.is_none());
    // The restart resumed from the committed progress, not from the very beginning.
    assert!(
        stream(&run, "bookings").counts.pages < 240 / 20,
        "{:?}",
        stream(&run, "bookings")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_young_cursor_resumes_the_interrupted_pass() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let cfg = interrupted_bookings_pass(&sb, &db, 6).await;
    let stored_before = open(&db)
        .query_row("SELECT COUNT(*) FROM bookings", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64;
    assert!(stored_before >= 60, "{stored_before}");
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let b = stream(&run, "bookings");
    // The bootstrap resumed at its cursor: it re-read none of the stored rows; the one page of
    // the catch-up incremental pass that follows a bootstrap lists rows again, which a first
    // load's catch-up counts as neither new nor unchanged.
    assert_eq!(b.counts.inserted, 240 - stored_before, "{b:?}");
    assert_eq!(b.counts.unchanged, 0, "{b:?}");
    assert_eq!(b.counts.pages, (240 - stored_before) / 20 + 1, "{b:?}");
    assert_eq!(stored(&db).rows("bookings"), sb.truth().rows("bookings"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_with_awkward_characters_authenticates() {
    let secret = "s3cr~t+with&odd=chars%2F/and space";
    let mut sc = small();
    sc.clients = vec![ClientKey {
        client_secret: secret.to_owned(),
        ..ClientKey::default()
    }];
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.auth.client_secret = Some(SecretString::from(secret.to_owned()));
    raw.streams = bookings_only();
    let run = sync(&config(raw)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_or_missing_scope_ends_the_run_with_what_to_fix() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.auth.client_secret = Some(SecretString::from("wrong".to_owned()));
    let err = test_support::sync::run(&config(raw), Stop::never())
        .await
        .unwrap_err();
    assert_eq!(err.failure(), sync::Failure::Auth);
    let msg = err.to_string();
    assert!(
        msg.contains("invalid_client") && msg.contains("auth.client_id"),
        "{msg}"
    );
    assert!(!msg.contains("wrong"), "the secret is not echoed: {msg}");

    let mut sc = small();
    sc.clients = vec![ClientKey {
        scopes: ["booking.read".to_owned()].into(),
        ..ClientKey::default()
    }];
    let sb = start(sc).await;
    let err = test_support::sync::run(&config(raw_config(&sb, &db)), Stop::never())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid_scope"), "{err}");
}

/// Bookings only, in pages of 20, with no retries: a first run that dies (503) after `pages`
/// requests, leaving a bootstrap pass with a cursor in its checkpoint. Returns the config.
async fn interrupted_bookings_pass(
    sb: &understory_sandbox::Sandbox,
    db: &std::path::Path,
    pages: usize,
) -> understory_sync::config::Config {
    let mut raw = raw_config(sb, db);
    raw.streams = bookings_only();
    raw.retry.run_budget = 0;
    raw.api.page_size = 20;
    let cfg = config(raw);
    sb.inject_after(pages, Fault::Status(503), 1);
    assert_eq!(sync(&cfg).await.status, RunStatus::Failed);
    cfg
}

fn bookings_only() -> understory_sync::config::RawStreams {
    understory_sync::config::RawStreams::only(&["bookings"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_from_both_null_and_absent_optional_fields_map_to_sql_null() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    sync(&config(raw_config(&sb, &db))).await;
    let c = open(&db);
    let (nulls, explicit): (i64, i64) = c
        .query_row(
            "SELECT SUM(internal_note IS NULL), SUM(json_type(raw_json, '$.internal_note') = 'null') FROM bookings",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(explicit > 0, "the sandbox sent some explicit nulls");
    assert!(nulls > explicit, "absent fields are NULL too");
    let legacy: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM marketing_consents WHERE id IS NULL AND consent_key LIKE 'legacy:%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        legacy > 0,
        "legacy consents without id are kept, keyed by company, email and source"
    );
    let money: (i64, String, i64) = c
        .query_row(
            "SELECT amount_minor, amount_currency, amount_exponent FROM orders LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((money.1.as_str(), money.2), ("DKK", 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_resumed_after_a_crash_remembers_what_it_saw_and_confirms_removals() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.streams = understory_sync::config::RawStreams::only(&["marketing_consents"]);
    raw.retry.run_budget = 0;
    raw.api.page_size = 10;
    let cfg = config(raw);
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    sb.inject_after(3, Fault::Status(503), 1); // the next scan dies on its fourth page
    assert_eq!(sync(&cfg).await.status, RunStatus::Failed);
    let seen: i64 = open(&db)
        .query_row("SELECT COUNT(*) FROM scan_seen", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 30, "the three pages it committed are remembered");
    sb.mutate(2); // consents removed and added meanwhile
    // The resumed scan completes the pass; legacy consents need a second miss.
    let first = sync(&cfg).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    let second = sync(&cfg).await;
    let removed = stream(&first, "marketing_consents").counts.removed
        + stream(&second, "marketing_consents").counts.removed;
    assert!(removed > 0, "{first:?} {second:?}");
    assert_eq!(
        stored(&db).rows("marketing_consents"),
        sb.truth().rows("marketing_consents")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_retried_but_a_400_is_not_and_names_stream_and_path() {
    let mut sc = small();
    sc.require_user_agent = true; // the job always sends one
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.api.request_timeout_secs = 1;
    raw.streams = bookings_only();
    sb.inject(Fault::Slow(std::time::Duration::from_millis(1_500)), 2);
    let run = sync(&config(raw)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert!(
        stream(&run, "bookings").counts.retries >= 2,
        "{:?}",
        stream(&run, "bookings")
    );

    let mut raw = raw_config(&sb, &db);
    raw.api.accept_language = "fr".into(); // experiences answer 400
    let run = sync(&config(raw)).await;
    assert_eq!(run.status, RunStatus::Partial);
    let x = stream(&run, "experiences");
    assert_eq!(
        (x.counts.retries, x.counts.requests),
        (0, 1),
        "a 400 is not retried: {x:?}"
    );
    let err = x.error.as_deref().unwrap();
    assert!(
        err.starts_with("experiences: GET v1/experiences") && err.contains("HTTP 400 BAD_REQUEST"),
        "{err}"
    );
    assert!(!err.contains("Bearer") && !err.contains("sbx."), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_never_followed() {
    use axum::response::Redirect;
    // A token endpoint that redirects elsewhere: following it would replay the secret.
    let app = axum::Router::new().route(
        "/oauth2/token",
        axum::routing::post(|| async { Redirect::temporary("http://127.0.0.1:9/steal") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.auth.token_url = format!("http://{addr}/oauth2/token");
    let err = test_support::sync::run(&config(raw), Stop::never())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("307") || err.to_string().contains("unexpected answer"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_rows_sharing_one_updated_at_still_converge() {
    let mut sc = small();
    sc.data.updated_pile_up = true;
    let sb = start(sc).await;
    let newest = sb
        .truth()
        .rows("bookings")
        .values()
        .filter_map(|b| b["updated_at"].as_str().map(str::to_owned))
        .max()
        .unwrap();
    let tied = sb
        .truth()
        .rows("bookings")
        .values()
        .filter(|b| b["updated_at"].as_str() == Some(newest.as_str()))
        .count();
    assert!(tied > 5, "the pile-up makes ties: {tied}");
    let (_dir, db) = temp_db();
    let cfg = config(raw_config(&sb, &db));
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    sb.mutate(2);
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    assert_converged(&db, &sb);
}

/// An incremental pass re-lists rows whenever rows updated while it walks move above its
/// cursor; under heavy churn a whole page can be rows it already listed. That is the API's
/// documented best-effort traversal, not a loop: the run must succeed, and the next one converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_pass_under_heavy_churn_is_not_taken_for_a_loop() {
    let mut sc = small();
    sc.data.bookings = 2_000;
    sc.mutate.update_share = 0.2;
    sc.faults = FaultConfig {
        slow: 1.0,
        slow_ms: 2,
        ..FaultConfig::default()
    };
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.streams = bookings_only();
    raw.api.page_size = 10;
    raw.api.max_concurrent = 1;
    let cfg = config(raw);
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    sb.mutate(1);
    sb.record();
    let run = tokio::spawn({
        let cfg = cfg.clone();
        async move { test_support::sync::run(&cfg, Stop::never()).await.unwrap() }
    });
    // 400 rows move to the top every few pages: forty pages' worth of rows listed again.
    let mut churned = 0;
    while !run.is_finished() && churned < 20 {
        let pages = sb
            .arrivals()
            .iter()
            .filter(|a| a.path == "/v1/bookings" && a.query.contains("sort=-updated_at"))
            .count();
        if pages >= 2 + 3 * churned {
            sb.mutate(1);
            churned += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let second = run.await.unwrap();
    assert!(churned >= 3, "the world changed while the pass walked: {churned}");
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    assert_bookings_converged(&db, &sb);
}
