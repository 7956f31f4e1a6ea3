//! What an operator reads: progress lines of a long run in the journal's and JSON's format,
//! `status` during a run, the counts an interrupted run leaves, per-parent streams' own lines,
//! the fatal line's format, and messages that say what is wrong.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::{BIN, Job, job, spawn_until_commits, sync_cmd, sync_ok, write_config};
use crate::support::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `sync` with `--log-format json`.
fn json_sync(cfg: &Path, secret: &str) -> Output {
    Command::new(BIN)
        .args(["--log-format", "json", "sync", "--config"])
        .arg(cfg)
        .env("UNDERSTORY_CLIENT_SECRET", secret)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Rows in every data table.
fn rows_stored(db: &Path) -> i64 {
    let c = open(db);
    understory_sync::streams::tables()
        .iter()
        .map(|t| {
            c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get::<_, i64>(0))
                .unwrap()
        })
        .sum()
}

/// The last run's status and row counts.
fn last_run(db: &Path) -> (String, i64, i64, i64, i64) {
    open(db)
        .query_row(
            "SELECT status, rows_inserted, rows_updated, rows_unchanged, requests FROM sync_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap()
}

fn kill(child: &std::process::Child, signal: &str) {
    assert!(
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_run_logs_progress_per_stream_for_the_journal_and_in_json() {
    let Job { sb, dir, .. } = job(25).await;
    let cfg = write_config(dir.path(), &sb, "[sync]\nprogress_secs = 1");
    let out = sync_cmd(&cfg, "sandbox-secret")
        .env("JOURNAL_STREAM", "8:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let progress: Vec<&str> = err.lines().filter(|l| l.contains("progress stream=")).collect();
    assert!(
        progress.iter().any(|l| l.starts_with("<6>")
            && l.contains("stream=\"orders\"")
            && l.contains("pages=")
            && l.contains("rows=")
            && l.contains("requests=")
            && l.contains("pace_rps=")
            && l.contains("waiting_for_fan_out=")),
        "a progress line for orders, at journald's info priority: {err}"
    );
    assert!(
        progress.iter().any(|l| l.contains("stream=\"order_line_items\"")),
        "per-parent streams get progress lines of their own: {err}"
    );
    // Each per-parent stream ends with a summary line of its own.
    for child in ["order_line_items", "order_transactions", "order_refunds"] {
        assert!(
            err.lines()
                .any(|l| l.contains("stream finished") && l.contains(&format!("stream=\"{child}\""))),
            "{child}: {err}"
        );
    }
    // The parent's rows are its own (its children have their lines), and its fan-out's share
    // done is there.
    let orders = sb.truth().rows("orders").len() as u64;
    for line in progress.iter().filter(|l| l.contains("stream=\"orders\"")) {
        let field = |name: &str| -> u64 {
            line.split(&format!(" {name}="))
                .nth(1)
                .and_then(|v| v.split(' ').next())
                .unwrap_or_else(|| panic!("{name} in {line}"))
                .parse::<f64>()
                .unwrap() as u64
        };
        assert!(field("rows") <= orders, "{line}");
        assert!(field("fan_out_done_pct") <= 100, "{line}");
    }

    std::fs::remove_file(dir.path().join("sync.sqlite")).unwrap();
    let out = json_sync(&cfg, "sandbox-secret");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: Vec<Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let progress: Vec<&Value> = json
        .iter()
        .filter(|v| v["fields"]["message"] == "progress")
        .collect();
    assert!(
        progress.iter().any(|v| v["level"] == "INFO"
            && v["fields"]["stream"] == "orders"
            && v["fields"]["requests"].as_u64() > Some(0)),
        "{progress:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_during_a_run_shows_it_running_with_what_it_committed_so_far() {
    let Job { sb, dir, .. } = job(25).await;
    let cfg = write_config(dir.path(), &sb, "[sync]\nprogress_secs = 1");
    let db = dir.path().join("sync.sqlite");
    let mut child = spawn_until_commits(&mut sync_cmd(&cfg, "sandbox-secret"), &db, 6).await;
    // Requests are recorded at each progress tick (1 s here).
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_run(&db).4 == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = Command::new(BIN)
        .args(["status", "--json", "--database"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(child.try_wait().unwrap().is_none(), "the run was still going");
    assert!(out.status.success(), "{}", stderr(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &status["runs"][0];
    assert_eq!(run["status"], "running", "{run}");
    let stored = rows_stored(&db);
    let counted = run["rows_inserted"].as_i64().unwrap();
    assert!(counted > 0, "{run}");
    // The count is written in each commit's own transaction, so it never runs ahead of the
    // rows (and only commits after `status` read can put it behind).
    assert!(counted <= stored, "counted {counted}, stored {stored}");
    assert!(run["requests"].as_i64().unwrap() > 0, "{run}");
    let text = Command::new(BIN)
        .args(["status", "--database"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    let newest = text.lines().nth(2).unwrap_or_default();
    assert!(newest.contains(" running ") && !newest.contains(" +0 "), "{text}");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_or_killed_run_records_exactly_what_it_committed() {
    let Job {
        sb: _sb,
        dir: _dir,
        cfg,
        db,
    } = job(25).await;
    // SIGTERM once the fan-out has written orders (the rows an interrupted run used to leave
    // uncounted): the run's row, finished by the job, counts every row it stored.
    let mut child = spawn_until_commits(&mut sync_cmd(&cfg, "sandbox-secret"), &db, 2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let orders = || {
        open(&db)
            .query_row("SELECT count(*) FROM orders", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0)
    };
    while orders() < 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(child.try_wait().unwrap().is_none(), "the run was still going");
    kill(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    let (status, inserted, updated, _, requests) = last_run(&db);
    assert_eq!(status, "interrupted");
    assert!(inserted > 0 && requests > 0);
    assert_eq!(
        (inserted, updated),
        (rows_stored(&db), 0),
        "a first run inserts every row it stores"
    );
    // What the stopped fan-out left to do is in `status`, per stream.
    let staged: i64 = open(&db)
        .query_row("SELECT count(*) FROM staging WHERE stream = 'orders'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(staged > 0, "the walk ran ahead of the slow fan-out");
    let out = Command::new(BIN)
        .args(["status", "--database"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "orders               {staged} parents staged, waiting for the fan-out"
        )),
        "{text}"
    );
    // And what it takes at the kept pace: three lists per order, one request each. The run
    // drew no 429, so no budget is learned: the pace it kept stands in.
    let pace: f64 = open(&db)
        .query_row("SELECT rate FROM pace_state", [], |r| r.get(0))
        .unwrap();
    let secs = staged as f64 * 3.0 / pace;
    let left = if secs < 90.0 {
        format!("{secs:.0} s")
    } else {
        format!("{:.0} min", secs / 60.0)
    };
    assert!(
        text.contains(&format!(
            ", about {left} left at {pace:.1} requests/s (3 per parent)"
        )),
        "{text}"
    );
    assert!(text.contains("a list's own walk has no estimate"), "{text}");
    assert!(
        text.contains("pace: no budget learned yet (no 429 so far)"),
        "{text}"
    );

    // SIGKILL: nothing of the job runs after, and the row still counts what landed, because
    // each commit counts itself.
    let before = rows_stored(&db);
    let child = spawn_until_commits(&mut sync_cmd(&cfg, "sandbox-secret"), &db, 8).await;
    kill(&child, "-KILL");
    let _ = child.wait_with_output().unwrap();
    let (status, inserted, ..) = last_run(&db);
    assert_eq!(
        status, "running",
        "left as the kill found it (the next run marks it abandoned)"
    );
    assert_eq!(inserted, rows_stored(&db) - before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_parent_streams_have_their_own_counts_and_lines() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let report = sync(&config(raw_config(&sb, &db))).await;
    let c = open(&db);
    let count = |t: &str| -> u64 {
        c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    };
    for table in [
        "orders",
        "order_line_items",
        "order_transactions",
        "order_refunds",
    ] {
        let s = stream(&report, table);
        assert_eq!(s.counts.inserted, count(table), "{table}: {s:?}");
        assert!(s.counts.requests > 0 || table == "orders", "{table}: {s:?}");
    }
    // One request per order for each per-parent list; the list's own pages are the order's.
    let orders = count("orders");
    assert_eq!(stream(&report, "order_line_items").counts.requests, orders);
    assert_eq!(stream(&report, "order_refunds").counts.pages, orders);
    assert!(stream(&report, "orders").counts.requests < orders);
    let summed: u64 = report.streams.iter().map(|s| s.counts.inserted).sum();
    assert_eq!(report.total().inserted, summed);
    let stored: i64 = open(&db)
        .query_row(
            "SELECT rows_inserted FROM sync_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored as u64, summed, "the run row counts every stream once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fatal_line_follows_the_log_format() {
    let Job {
        sb: _sb,
        dir: _dir,
        cfg,
        ..
    } = job(0).await;
    let journald = sync_cmd(&cfg, "wrong-secret")
        .env("JOURNAL_STREAM", "8:1")
        .output()
        .unwrap();
    assert_eq!(journald.status.code(), Some(3));
    let errors: Vec<String> = stderr(&journald)
        .lines()
        .filter(|l| l.contains("error:"))
        .map(str::to_owned)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("<3>error: ") && errors[0].contains("invalid_client"),
        "{errors:?}"
    );

    let json = json_sync(&cfg, "wrong-secret");
    assert_eq!(json.status.code(), Some(3));
    let lines: Vec<Value> = stderr(&json)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let fatal: Vec<&Value> = lines.iter().filter(|v| v["level"] == "ERROR").collect();
    assert_eq!(fatal.len(), 1, "{lines:?}");
    let message = fatal[0]["fields"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("error: ") && message.contains("invalid_client"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_says_when_a_sync_starts_and_a_clean_stop_prints_no_error() {
    let Job {
        sb: _sb,
        dir: _dir,
        cfg,
        db,
    } = job(25).await;
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config"])
        .arg(&cfg)
        .env("UNDERSTORY_CLIENT_SECRET", "sandbox-secret")
        .env("UNDERSTORY_SYNC__SCHEDULE", "* * * * * *")
        .env_remove("RUST_LOG");
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !db.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill(&child, "-TERM");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("scheduled sync starting"), "{err}");
    assert!(!err.contains("error"), "a clean stop is no error: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_name_what_to_fix() {
    let Job { sb, dir, cfg, db } = job(0).await;
    // A mistyped environment override is the variable's fault, not the file's.
    let out = sync_cmd(&cfg, "sandbox-secret")
        .env("UNDERSTORY_SYNC__XYZ", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: config: environment variable UNDERSTORY_SYNC__XYZ: unknown field `xyz`"),
        "{err}"
    );

    // Bare `status` without a config: how to name the database, not how to write a config.
    let out = Command::new(BIN)
        .arg("status")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--database FILE"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("copy config"), "{}", stderr(&out));

    // The sandbox's port taken: a flag to change, exit 2.
    let port = url::Url::parse(&sb.base_url()).unwrap().port().unwrap();
    let out = Command::new(BIN)
        .args(["sandbox", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));

    // A snapshot that cannot be written: the sync is kept, one error line, exit 8.
    let cfg2 = write_config(dir.path(), &sb, "[snapshot]\npath = \"no-such-dir/copy.sqlite\"");
    let out = sync_cmd(&cfg2, "sandbox-secret").output().unwrap();
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("snapshot was not published") && errors[0].contains("no-such-dir"),
        "{errors:?}"
    );
    assert_eq!(last_run(&db).0, "succeeded");
    assert!(rows_stored(&db) > 0);
    let _ = cfg;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_is_one_consistent_file_with_the_configured_mode() {
    use std::os::unix::fs::PermissionsExt;
    let Job { sb, dir, .. } = job(0).await;
    let cfg = write_config(
        dir.path(),
        &sb,
        "[snapshot]\npath = \"published/understory.sqlite\"\nmode = \"0644\"",
    );
    std::fs::create_dir(dir.path().join("published")).unwrap();
    let snapshot = dir.path().join("published/understory.sqlite");
    let out = sync_cmd(&cfg, "sandbox-secret").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mode = std::fs::metadata(&snapshot).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // One plain file: rollback journal, nothing beside it, the same rows as the live file.
    let c = open(&snapshot);
    let journal: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(journal, "delete");
    drop(c);
    let beside: Vec<String> = std::fs::read_dir(dir.path().join("published"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["understory.sqlite"]);
    assert_eq!(
        fingerprint(&snapshot),
        fingerprint(&dir.path().join("sync.sqlite"))
    );
}

/// `sync` run as root by mistake over the service user's database: refused before a byte is
/// written (root would leave files the service cannot write and a `root:root` snapshot the
/// analysts cannot read), with one line naming `sudo -u` and that user. A fresh install's empty
/// state directory counts as the database's. Only root can show it: elsewhere the test says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_run_over_another_users_database_is_refused_untouched() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root: nothing to show");
        return;
    }
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    // The state directory belongs to `nobody`, as /var/lib/understory-sync to its service user.
    let nobody = rustix::process::Uid::from_raw(65_534);
    rustix::fs::chown(&state, Some(nobody), None).unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("database = \"sync.sqlite\"", "database = \"state/sync.sqlite\"");
    std::fs::write(&cfg, text).unwrap();
    sb.record();
    let out = sync_cmd(&cfg, "sandbox-secret").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("running as root") && errors[0].contains("sudo -u nobody"),
        "{}",
        errors[0]
    );
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0, "nothing written");
    assert!(sb.arrivals().is_empty(), "nothing asked of the API");
    // Once the directory is root's, the same run goes ahead.
    rustix::fs::chown(&state, Some(rustix::process::Uid::ROOT), None).unwrap();
    sync_ok(&cfg);
}

/// Between runs the disk holds the database and an empty WAL: the end-of-run checkpoint
/// truncates it when no reader is in the way, instead of leaving its high-water mark (tens of
/// MB after a first load) beside the database until the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_leaves_an_empty_wal_beside_the_database() {
    let mut sc = small();
    sc.data.bookings = 2_000;
    let sb = start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    sync_ok(&cfg);
    let db = dir.path().join("sync.sqlite");
    let wal = dir.path().join("sync.sqlite-wal");
    let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(
        wal_len,
        0,
        "the WAL beside a {}-byte database",
        std::fs::metadata(&db).unwrap().len()
    );
    assert!(std::fs::metadata(&db).unwrap().len() > 100_000);
}
