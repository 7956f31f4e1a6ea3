//! Faults that must not make later runs miss data, or crawl, while they exit 0: an item dated
//! in the future, quarantined items the API will not give back, a flood of them, and a first
//! load whose pages keep repeating what it already stored. Each is played by a stub bookings
//! list on loopback that sorts, filters and pages as the API does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};
use serde_json::{Value, json};

use crate::cli::sync_cmd;
use crate::hostile::{fails_with_one_line, serve, stub_config_for, token_endpoint};
use crate::support::open;

/// A bookings list: sorted by `sort`, filtered by `from`, paged by an offset cursor, and each
/// item by id, where `failing` ids answer a status instead.
#[derive(Clone, Default)]
struct Bookings {
    items: Arc<Mutex<Vec<Value>>>,
    failing: Arc<Mutex<HashMap<String, u16>>>,
    /// By-id answers wait this long first.
    slow_by_id: Arc<Mutex<std::time::Duration>>,
    asked_by_id: Arc<Mutex<Vec<String>>>,
    pages: Arc<AtomicUsize>,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn booking(id: &str, created: &str, updated: &str) -> Value {
    json!({"id": id, "created_at": created, "updated_at": updated, "status": "CONFIRMED"})
}

fn instant(v: &Value, field: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v[field].as_str()?)
        .ok()
        .map(|t| t.to_utc())
}

impl Bookings {
    /// `n` bookings `b-0`…, created and last updated a minute apart from `base`.
    fn a_minute_apart(base: DateTime<Utc>, n: i64) -> Self {
        let b = Self::default();
        for n in 0..n {
            let at = iso(base + Duration::minutes(n));
            b.put(booking(&format!("b-{n}"), &at, &at));
        }
        b
    }

    fn put(&self, item: Value) {
        let mut items = self.items.lock().unwrap();
        items.retain(|i| i["id"] != item["id"]);
        items.push(item);
    }

    async fn serve(self) -> String {
        let app = axum::Router::new()
            .route("/v1/bookings", get(list))
            .route("/v1/bookings/{id}", get(by_id))
            .with_state(self)
            .merge(token_endpoint());
        serve(app).await
    }
}

async fn list(State(b): State<Bookings>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    b.pages.fetch_add(1, Ordering::Relaxed);
    let mut items = b.items.lock().unwrap().clone();
    match q.get("sort").map(String::as_str) {
        Some("+created_at") => items.sort_by_key(|i| (instant(i, "created_at"), i["id"].to_string())),
        Some("-updated_at") => {
            items.sort_by_key(|i| (instant(i, "updated_at"), i["id"].to_string()));
            items.reverse();
        }
        _ => {}
    }
    if let Some(from) = q.get("from").and_then(|f| DateTime::parse_from_rfc3339(f).ok()) {
        items.retain(|i| instant(i, "created_at").is_none_or(|c| c >= from));
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let offset: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = items.iter().skip(offset).take(limit).cloned().collect();
    let next = (offset + limit < items.len()).then(|| (offset + limit).to_string());
    Json(json!({"items": page, "next": next}))
}

async fn by_id(State(b): State<Bookings>, UrlPath(id): UrlPath<String>) -> Response {
    b.asked_by_id.lock().unwrap().push(id.clone());
    let delay = *b.slow_by_id.lock().unwrap();
    tokio::time::sleep(delay).await;
    if let Some(status) = b.failing.lock().unwrap().get(&id) {
        return StatusCode::from_u16(*status).unwrap().into_response();
    }
    let found = b.items.lock().unwrap().iter().find(|i| i["id"] == id).cloned();
    match found {
        Some(item) => Json(item).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Runs the binary once; returns its exit code and stderr.
fn run(cfg: &Path) -> (Option<i32>, String) {
    let out = sync_cmd(cfg, "secret").output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_ok(cfg: &Path) -> String {
    let (code, err) = run(cfg);
    assert_eq!(code, Some(0), "{err}");
    err
}

fn config(dir: &Path, base: &str, extra: &str) -> PathBuf {
    let cfg = stub_config_for(dir, base, "bookings = true");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(extra);
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn db(dir: &Path) -> rusqlite::Connection {
    open(&dir.join("stub.sqlite"))
}

fn stored_since(dir: &Path, since: DateTime<Utc>) -> i64 {
    db(dir)
        .query_row(
            "SELECT count(*) FROM bookings WHERE julianday(updated_at) >= julianday(?1) AND updated_at < '9999'",
            [iso(since)],
            |r| r.get(0),
        )
        .unwrap()
}

fn high_water_mark(dir: &Path) -> DateTime<Utc> {
    let mark: String = db(dir)
        .query_row(
            "SELECT high_water_mark FROM sync_state WHERE stream = 'bookings'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    DateTime::parse_from_rfc3339(&mark).unwrap().to_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_dated_in_the_future_never_freezes_the_incremental_sync() {
    let now = Utc::now().trunc_subsecs(0);
    let base = now - Duration::days(3);
    let b = Bookings::a_minute_apart(base, 100);
    // A clock glitch on the API's side.
    b.put(booking("b-future", &iso(base), "9999-12-31T23:59:59Z"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &b.clone().serve().await,
        "[sync]\noverlap_secs = 600\n",
    );

    let err = run_ok(&cfg);
    let said = err
        .lines()
        .filter(|l| l.contains("never taken as the high-water mark"))
        .count();
    assert_eq!(
        said, 1,
        "said once a walk (the first load and its catch-up list it): {err}"
    );
    assert!(high_water_mark(dir.path()) < now + Duration::days(1));
    let streams: String = db(dir.path())
        .query_row(
            "SELECT streams_json FROM sync_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let counted: Value = serde_json::from_str(&streams).unwrap();
    assert!(
        counted[0]["future_dated"].as_u64() >= Some(1),
        "counted in the run's row: {streams}"
    );

    // 250 changes: 100 bookings updated, 150 new ones.
    let changed = now - Duration::hours(1);
    for n in 0..250 {
        let at = iso(changed + Duration::seconds(n));
        let created = if n < 100 {
            iso(base + Duration::minutes(n))
        } else {
            at.clone()
        };
        b.put(booking(&format!("b-{n}"), &created, &at));
    }
    run_ok(&cfg);
    assert_eq!(stored_since(dir.path(), changed), 250, "every change is stored");

    // The boundary holds: an item stamped exactly at the mark, and one ten minutes older that
    // became visible late (overlap 600 s), are both stored.
    let mark = high_water_mark(dir.path());
    b.put(booking("b-at-mark", &iso(changed), &iso(mark)));
    b.put(booking(
        "b-late",
        &iso(changed),
        &iso(mark - Duration::minutes(10)),
    ));
    run_ok(&cfg);
    let late: i64 = db(dir.path())
        .query_row(
            "SELECT count(*) FROM bookings WHERE id IN ('b-at-mark', 'b-late')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(late, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_in_the_future_left_by_an_earlier_version_is_repaired() {
    let now = Utc::now().trunc_subsecs(0);
    let base = now - Duration::days(3);
    let b = Bookings::a_minute_apart(base, 120);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &b.clone().serve().await, "");
    run_ok(&cfg);
    // What a version without the horizon kept after listing a booking dated 9999.
    db(dir.path())
        .execute(
            "UPDATE sync_state SET high_water_mark = '9999-12-31T23:59:59.000Z' WHERE stream = 'bookings'",
            [],
        )
        .unwrap();
    let changed = now - Duration::hours(1);
    for n in 0..150 {
        let at = iso(changed + Duration::seconds(10 * n));
        b.put(booking(&format!("b-new-{n}"), &at, &at));
    }
    let err = run_ok(&cfg);
    assert!(err.contains("the high-water mark is in the future"), "{err}");
    assert_eq!(stored_since(dir.path(), changed), 150, "nothing missed");
    let mark = high_water_mark(dir.path());
    assert_eq!(
        mark,
        changed + Duration::seconds(1_490),
        "the mark is the newest change"
    );
    // The next run is an ordinary incremental one again: one page (its oldest item is below the
    // mark less the overlap).
    let before = b.pages.load(Ordering::Relaxed);
    let err = run_ok(&cfg);
    assert!(!err.contains("in the future"), "{err}");
    assert_eq!(b.pages.load(Ordering::Relaxed) - before, 1);
}

/// A booking the job cannot read (no `created_at`).
fn unreadable(id: &str, updated: &str) -> Value {
    json!({"id": id, "updated_at": updated, "status": "CONFIRMED"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_item_the_api_fails_to_give_back_never_stops_the_stream() {
    let now = Utc::now().trunc_subsecs(0);
    let base = now - Duration::days(3);
    let b = Bookings::a_minute_apart(base, 10);
    b.put(unreadable("b-bad", &iso(base)));
    b.failing.lock().unwrap().insert("b-bad".into(), 500);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &b.clone().serve().await, "");
    for run_no in 0..3 {
        let changed = now - Duration::hours(3 - run_no);
        for n in 0..40 {
            let at = iso(changed + Duration::seconds(n));
            b.put(booking(&format!("b-{run_no}-{n}"), &at, &at));
        }
        let err = run_ok(&cfg);
        assert!(
            err.contains("quarantined items could not be fetched again"),
            "run {run_no}: {err}"
        );
        assert_eq!(stored_since(dir.path(), changed), 40, "run {run_no}");
    }
    let asked = b.asked_by_id.lock().unwrap().len();
    assert_eq!(asked, 3, "asked once a run, never retried within it");
    let kept: i64 = db(dir.path())
        .query_row(
            "SELECT count(*) FROM quarantine WHERE item_id = 'b-bad'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1, "it stays in quarantine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_quarantined_items_is_retried_in_turns_and_said_in_few_lines() {
    let now = Utc::now().trunc_subsecs(0);
    let base = now - Duration::days(3);
    let b = Bookings::default();
    // FLOOD=4999 measures the figure docs/reliability.md gives.
    let flood: usize = std::env::var("FLOOD")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or(250);
    for n in 0..flood as i64 {
        b.put(unreadable(
            &format!("q-{n:04}"),
            &iso(base + Duration::seconds(n)),
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &b.clone().serve().await, "");
    let mut asked_before = 0;
    for run_no in 0..3 {
        let changed = now - Duration::hours(3 - run_no);
        let at = iso(changed);
        b.put(booking(&format!("b-{run_no}"), &at, &at));
        let started = std::time::Instant::now();
        let err = run_ok(&cfg);
        eprintln!("run {run_no}: {:?}", started.elapsed());
        let lines = err.lines().filter(|l| l.contains("quarantine")).count();
        assert!(lines <= 5, "run {run_no}: {lines} lines about quarantine\n{err}");
        let asked = b.asked_by_id.lock().unwrap().len();
        assert!(
            asked - asked_before <= 100,
            "run {run_no} asked for {}",
            asked - asked_before
        );
        asked_before = asked;
        assert_eq!(stored_since(dir.path(), changed), 1, "run {run_no}");
    }
    let mut asked = b.asked_by_id.lock().unwrap().clone();
    asked.sort();
    asked.dedup();
    assert_eq!(
        asked.len(),
        flood.min(300),
        "three runs took turns through every item"
    );
}

/// A first load's pages: `page(n)` is what the cursor `n` answers, with `next` = n + 1.
async fn looping_list(page: fn(usize) -> Vec<Value>) -> String {
    let app = token_endpoint().route(
        "/v1/bookings",
        get(move |Query(q): Query<HashMap<String, String>>| async move {
            let n: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
            Json(json!({"items": page(n), "next": (n + 1).to_string()}))
        }),
    );
    serve(app).await
}

fn numbered(n: usize) -> Value {
    let at = "2026-01-01T10:00:00Z";
    booking(&format!("b-{n}"), at, at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_load_that_keeps_listing_what_it_stored_stops_with_its_own_exit_code() {
    // Nine bookings under a fresh cursor every time (too few for an exact page check), and a
    // window that slides by one booking a page.
    let few: fn(usize) -> Vec<Value> = |_| (0..9).map(numbered).collect();
    let sliding: fn(usize) -> Vec<Value> = |n| (n..n + 100).map(numbered).collect();
    // Caught on the third page, before it is stored: two pages' items at most.
    for (name, page, most) in [("nine", few, 9 * 2), ("sliding", sliding, 100 * 2)] {
        let base = looping_list(page).await;
        let dir = tempfile::tempdir().unwrap();
        // A run without the check would end at its ceiling, exit 7, and the next would resume.
        let cfg = config(dir.path(), &base, "[sync]\nmax_run_secs = 60\n");
        let out = sync_cmd(&cfg, "secret").output().unwrap();
        let (err, line) = fails_with_one_line(&out, 9);
        assert!(line.contains("already read"), "{name}: {err}");
        let rows: i64 = db(dir.path())
            .query_row("SELECT count(*) FROM bookings", [], |r| r.get(0))
            .unwrap();
        assert!(rows <= most, "{name}: {rows} rows stored");
    }
}

/// A first load whose only booking is stamped beyond the horizon still completes with a mark:
/// without one every later run would be a first load again, appending the list each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_load_of_only_future_items_does_not_repeat_every_run() {
    let b = Bookings::default();
    b.put(booking(
        "b-future",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59Z",
    ));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &b.clone().serve().await, "");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let err = run_ok(&cfg);
        let c = db(dir.path());
        let rows: i64 = c
            .query_row("SELECT count(*) FROM bookings", [], |r| r.get(0))
            .unwrap();
        let aside: i64 = c
            .query_row(
                "SELECT count(*) FROM deferred_indexes WHERE tbl = 'bookings'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(-1);
        let mark: Option<String> = c
            .query_row(
                "SELECT high_water_mark FROM sync_state WHERE stream = 'bookings'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(None);
        seen.push((rows, aside, mark, err.contains("first full load")));
    }
    assert_eq!(
        seen.last().unwrap().0,
        1,
        "rows, indexes aside, mark, said first load: {seen:?}"
    );
}

/// Pages listing one booking a hundred times, under fresh cursors, are a loop: every listing
/// counts, not each distinct key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_one_id_repeated_are_a_loop() {
    let base = looping_list(|_| (0..100).map(|_| numbered(0)).collect()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &base, "[sync]\nmax_run_secs = 60\n");
    let out = sync_cmd(&cfg, "secret").output().unwrap();
    let rows: i64 = db(dir.path())
        .query_row("SELECT count(*) FROM bookings", [], |r| r.get(0))
        .unwrap_or(-1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(9),
        "{rows} rows stored; {}",
        err.lines().last().unwrap_or("")
    );
    assert_eq!(rows, 0, "caught on its first page, before it is stored");
}

/// A server whose clock glitches to 9999 in its `Date` header (as in its stamps) has a bounded
/// say on the horizon: the future item never becomes the mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_date_header_does_not_make_a_future_item_the_mark() {
    let now = Utc::now().trunc_subsecs(0);
    let base = now - Duration::days(3);
    let b = Bookings::a_minute_apart(base, 10);
    b.put(booking("b-future", &iso(base), "9999-12-31T23:59:59Z"));
    let app = axum::Router::new()
        .route("/v1/bookings", get(list))
        .route("/v1/bookings/{id}", get(by_id))
        .with_state(b.clone())
        .layer(axum::middleware::map_response(|mut r: Response| async move {
            r.headers_mut().insert(
                axum::http::header::DATE,
                axum::http::HeaderValue::from_static("Fri, 31 Dec 9999 23:59:59 GMT"),
            );
            r
        }))
        .merge(token_endpoint());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &serve(app).await, "");
    let mut marks = Vec::new();
    for _ in 0..2 {
        let err = run_ok(&cfg);
        marks.push((high_water_mark(dir.path()), err.contains("in the future")));
    }
    assert!(
        marks.iter().all(|(m, _)| *m < now + Duration::days(2)),
        "marks, and whether a repair was said: {marks:?}"
    );
}

/// A stop (SIGTERM, or the run's own ceiling) while another stream is still walking makes the
/// run `interrupted`, but a loop seen before it still exits 9 (7 is a success for the units).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_is_not_hidden_by_a_stop_during_another_stream() {
    let app = token_endpoint()
        .route(
            "/v1/bookings",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let n: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
                Json(json!({"items": (0..9).map(numbered).collect::<Vec<_>>(), "next": (n + 1).to_string()}))
            }),
        )
        .route(
            "/v1/events",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                Json(json!({"items": [], "next": null}))
            }),
        );
    let base = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = stub_config_for(dir.path(), &base, "bookings = true\nevents = true");
    let child = sync_cmd(&cfg, "secret")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already read"), "bookings looped first: {err}");
    assert_eq!(out.status.code(), Some(9), "{err}");
}

/// A 429 on a by-id retry ends the run's retries: it is the API's verdict on the run, not on
/// the item, and asking on would only earn more (and cut the pace later runs keep).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_quarantine_retry_stops_asking() {
    let now = Utc::now().trunc_subsecs(0);
    let base = now - Duration::days(3);
    let b = Bookings::default();
    for n in 0..100 {
        let id = format!("q-{n:03}");
        b.put(unreadable(&id, &iso(base + Duration::seconds(n))));
        b.failing.lock().unwrap().insert(id, 429);
    }
    b.put(booking("b-0", &iso(base), &iso(base)));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &b.clone().serve().await, "");
    let started = std::time::Instant::now();
    let err = run_ok(&cfg);
    let asked = b.asked_by_id.lock().unwrap().len();
    let summary = err
        .lines()
        .filter(|l| l.contains("run finished"))
        .collect::<Vec<_>>()
        .join("");
    assert!(
        asked <= 2,
        "asked {asked} times by id after 429s, run took {:?}: {summary}",
        started.elapsed()
    );
}

/// Quarantined items the API answers slowly are asked for at most a tenth of the run's ceiling
/// (here 6 s of `max_run_secs = 60`), and the run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_quarantine_retries_stop_at_their_share_of_the_run() {
    let base = Utc::now().trunc_subsecs(0) - Duration::days(3);
    let b = Bookings::a_minute_apart(base, 5);
    for n in 0..20 {
        b.put(unreadable(
            &format!("q-{n:02}"),
            &iso(base + Duration::seconds(n)),
        ));
    }
    *b.slow_by_id.lock().unwrap() = std::time::Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &b.clone().serve().await,
        "[sync]\nmax_run_secs = 60\n",
    );
    let err = run_ok(&cfg);
    let asked = b.asked_by_id.lock().unwrap().len();
    assert!(
        (2..=4).contains(&asked),
        "{asked} of 20 asked for in 6 s of 2-s answers\n{err}"
    );
    assert!(err.contains("the rest wait for a later run"), "{err}");
}
