//! Issue 4: running unattended — lock, graceful stop, exit codes, check, status, metrics, the
//! cron loop, and the systemd units.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use understory_sandbox::config::{ClientKey, FaultConfig};

use crate::cli::{BIN, Job, job, spawn_until_commits, sync_cmd, sync_ok, write_config};
use crate::support::*;

fn sigterm(child: &Child) {
    signal(child, "-TERM");
}

fn signal(child: &Child, which: &str) {
    let ok = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {which}");
}

/// Waits for `child` to exit, at most `limit`; returns its exit code and how long it took.
async fn exit_within(child: &mut Child, limit: Duration) -> (Option<i32>, Duration) {
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), t.elapsed());
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn last_run(db: &Path) -> (String, Option<String>) {
    open(db)
        .query_row(
            "SELECT status, ended_at FROM sync_runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_sync_exits_promptly_records_interrupted_and_the_next_run_converges() {
    let Job {
        sb,
        dir: _dir,
        cfg,
        db,
    } = job(40).await;
    // SIGTERM from systemd, SIGINT from Ctrl-C: the same clean stop.
    for which in ["-TERM", "-INT"] {
        let mut child = spawn_until_commits(
            sync_cmd(&cfg, "sandbox-secret").env("UNDERSTORY_SYNC__API__PAGE_SIZE", "10"),
            &db,
            4,
        )
        .await;
        signal(&child, which);
        let (code, took) = exit_within(&mut child, Duration::from_secs(5)).await;
        assert_eq!(code, Some(7), "{which}: interrupted exit code (took {took:?})");
        let (status, ended) = last_run(&db);
        assert_eq!(status, "interrupted", "{which}");
        assert!(ended.is_some());
    }
    // `status` shows the stops as stops, not errors.
    let out = Command::new(BIN)
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let stopped: Vec<&str> = text.lines().filter(|l| l.contains("interrupted")).collect();
    assert_eq!(stopped.len(), 2, "{text}");
    for line in stopped {
        assert!(line.contains("  stopped: ") && !line.contains("error"), "{line}");
    }
    assert!(!text.contains("error:"), "{text}");
    sb.set_faults(FaultConfig::default());
    sync_ok(&cfg);
    assert_converged(&db, &sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_is_refused_and_a_killed_holder_does_not_block() {
    let Job { sb, dir, cfg, db } = job(30).await;
    let mut first = spawn_until_commits(&mut sync_cmd(&cfg, "sandbox-secret"), &db, 2).await;

    let second = sync_cmd(&cfg, "sandbox-secret").output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(6), "{err}");
    assert!(
        err.contains(&format!("pid {}", first.id())),
        "names the holder: {err}"
    );

    first.kill().unwrap(); // SIGKILL: the lock file stays behind, the OS lock does not
    first.wait().unwrap();
    assert!(dir.path().join("sync.sqlite.lock").exists());
    sb.set_faults(FaultConfig::default());
    let out = sync_cmd(&cfg, "sandbox-secret").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_converged(&db, &sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_documented_exit_code() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let code = |cmd: &mut Command| {
        cmd.stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .code()
    };

    // 0: success.
    let cfg = write_config(dir.path(), &sb, "");
    assert_eq!(code(&mut sync_cmd(&cfg, "sandbox-secret")), Some(0));
    // 2: configuration (unknown key; bad schedule; missing secret).
    let bad = write_config(dir.path(), &sb, "[streams.extra]\nfoo = 1\n");
    assert_eq!(code(&mut sync_cmd(&bad, "sandbox-secret")), Some(2));
    let cfg = write_config(dir.path(), &sb, "");
    assert_eq!(
        code(sync_cmd(&cfg, "sandbox-secret").env("UNDERSTORY_SYNC__SCHEDULE", "every day")),
        Some(2)
    );
    assert_eq!(
        code(
            Command::new(BIN)
                .args(["sync", "--config"])
                .arg(&cfg)
                .env_remove("UNDERSTORY_CLIENT_SECRET")
        ),
        Some(2)
    );
    // 3: authentication.
    assert_eq!(code(&mut sync_cmd(&cfg, "wrong-secret")), Some(3));
    // 4: the API failing after retries.
    sb.set_faults(FaultConfig {
        status_502: 1.0,
        ..FaultConfig::default()
    });
    assert_eq!(
        code(sync_cmd(&cfg, "sandbox-secret").env("UNDERSTORY_SYNC__RETRY__RUN_BUDGET", "3")),
        Some(4)
    );
    sb.set_faults(FaultConfig::default());
    // 5: partial — experiences refuse an unknown language, the other streams sync.
    assert_eq!(
        code(sync_cmd(&cfg, "sandbox-secret").env("UNDERSTORY_SYNC__API__ACCEPT_LANGUAGE", "fr")),
        Some(5)
    );
    // 6: lock busy.
    let held = understory_sync::test_support::lock::acquire(&dir.path().join("sync.sqlite")).unwrap();
    assert_eq!(code(&mut sync_cmd(&cfg, "sandbox-secret")), Some(6));
    drop(held);
    // 8: the database cannot be written.
    assert_eq!(
        code(sync_cmd(&cfg, "sandbox-secret").env(
            "UNDERSTORY_SYNC__DATABASE",
            dir.path().join("no/such/dir/x.sqlite")
        )),
        Some(8)
    );
    // (7, interrupted, is shown by the SIGTERM test.)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_good_key_a_bad_secret_and_a_missing_scope() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let run = |secret: &str, cfg: &Path| {
        Command::new(BIN)
            .args(["check", "--config"])
            .arg(cfg)
            .env("UNDERSTORY_CLIENT_SECRET", secret)
            .output()
            .unwrap()
    };
    let out = run("sandbox-secret", &cfg);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("company \"Sandbox Adventures ApS\""), "{stdout}");
    assert!(
        stdout.contains("granted scopes cover") && stdout.contains("writable and migrated"),
        "{stdout}"
    );

    let out = run("nope", &cfg);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(err.contains("invalid_client"));

    let mut sc = small();
    sc.clients = vec![ClientKey {
        scopes: ["booking.read".to_owned(), "order.read".to_owned()].into(),
        ..ClientKey::default()
    }];
    let narrow = start(sc).await;
    let cfg = write_config(dir.path(), &narrow, "");
    let out = run("sandbox-secret", &cfg);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("invalid_scope") && err.contains("marketing.read, event.read, experience.read"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_and_the_metrics_textfile_after_runs() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("understory.prom");
    let cfg = write_config(
        dir.path(),
        &sb,
        &format!("[metrics]\ntextfile = \"{}\"\n", metrics.display()),
    );
    for _ in 0..2 {
        sync_ok(&cfg);
    }
    let st = status_json(&cfg);
    // `status | head`: a reader that stops early is not an error. The pipe's reading end is
    // closed before the command starts, so every write it makes fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let piped = Command::new(BIN)
        .args(["status", "--config"])
        .arg(&cfg)
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(
        piped.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert!(
        piped.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert_eq!(st["runs"].as_array().unwrap().len(), 2);
    assert_eq!(st["runs"][0]["status"], "succeeded");
    assert_eq!(
        st["runs"][0]["rows_inserted"], 0,
        "the second run changed nothing"
    );
    // Every counter of the run row, under its `sync_runs` column's name.
    for key in [
        "rows_updated",
        "rows_unchanged",
        "rows_removed",
        "requests",
        "retries",
        "rate_limited",
    ] {
        assert!(st["runs"][0][key].is_u64(), "{key}: {}", st["runs"][0]);
    }
    assert!(
        st["runs"][1]["rows_inserted"].as_u64().unwrap() > 0,
        "the first run stored rows"
    );
    let bookings = st["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == "bookings")
        .unwrap();
    assert!(
        bookings["high_water_mark"]
            .as_str()
            .is_some_and(|h| h.starts_with("2025-12") || h.starts_with("2026-01-01")),
        "the newest update, up to the sandbox's 2026-01-01: {bookings}"
    );
    assert_eq!(bookings["has_cursor"], false);
    let rows: Vec<(String, i64)> = serde_json::from_value(st["rows"].clone()).unwrap();
    assert!(rows.contains(&("bookings".to_owned(), 240)));
    let text = Command::new(BIN)
        .args(["status", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("high-water mark"));

    // The textfile, parsed back sample by sample. Every sample names the account first: the
    // config file's name, understory-sync.toml, without its extension.
    let prom = std::fs::read_to_string(&metrics).unwrap();
    for line in prom.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.contains("{account=\"understory-sync\"") && line.matches("account=").count() == 1,
            "{line}"
        );
    }
    let prom = prom
        .replace("{account=\"understory-sync\"}", "")
        .replace("{account=\"understory-sync\",", "{");
    let sample = |name: &str| -> f64 {
        prom.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in\n{prom}"))
    };
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - sample("understory_sync_last_run_timestamp_seconds")).abs() < 120.0);
    assert!(sample("understory_sync_last_success_timestamp_seconds") > 0.0);
    assert_eq!(
        sample("understory_sync_last_run_status{status=\"succeeded\"}"),
        1.0
    );
    assert!(sample("understory_sync_last_run_rows{stream=\"bookings\",change=\"unchanged\"}") > 0.0);
    assert_eq!(
        sample("understory_sync_last_run_rows{stream=\"bookings\",change=\"inserted\"}"),
        0.0
    );
    assert!(sample("understory_sync_last_run_requests{stream=\"orders\"}") >= 1.0);
    assert!(prom.contains("# TYPE understory_sync_last_run_retries gauge"));
    // The pace and the quarantine: config pace 5000/s, nothing throttled, nothing unreadable.
    assert_eq!(
        sample("understory_sync_last_run_pace_requests_per_second"),
        5000.0
    );
    assert_eq!(
        sample("understory_sync_last_run_peak_pace_requests_per_second"),
        5000.0
    );
    assert_eq!(sample("understory_sync_last_run_rate_limited_total"), 0.0);
    assert_eq!(sample("understory_sync_last_run_paused_seconds"), 0.0);
    assert_eq!(sample("understory_sync_quarantined_items"), 0.0);
    assert_eq!(
        sample("understory_sync_last_run_newly_quarantined{stream=\"bookings\"}"),
        0.0
    );
    assert!(
        !dir.path()
            .read_dir()
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains(".tmp.")),
        "no temp file left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_mode_syncs_on_schedule_and_stops_cleanly_on_sigterm() {
    let Job {
        sb: _sb,
        dir: _dir,
        cfg,
        db,
    } = job(0).await;
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .env("UNDERSTORY_CLIENT_SECRET", "sandbox-secret")
        .env("UNDERSTORY_SYNC__SCHEDULE", "*/2 * * * * *")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let succeeded = || -> i64 {
        if !db.exists() {
            return 0;
        }
        open(&db)
            .query_row(
                "SELECT COUNT(*) FROM sync_runs WHERE status = 'succeeded'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0)
    };
    while succeeded() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(succeeded() >= 2, "two scheduled runs happened");
    sigterm(&child);
    let (code, _) = exit_within(&mut child, Duration::from_secs(5)).await;
    assert_eq!(code, Some(0));
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    assert!(logs.contains("next_run"), "logs the next fire time: {logs}");
}

/// The shipped units, with ExecStart pointed at the built binary, in a temporary directory.
fn units_for_analysis(dir: &Path) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".service") || name.ends_with(".timer")) {
            // A drop-in is verified with the unit it extends (below); the sysusers file is
            // no unit.
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/bin/understory-sync", BIN)
            // Datasette is the analysts' to install (docs/analysts.md); verify wants a program there.
            .replace("/opt/understory-sync-datasette/bin/datasette", "/bin/true");
        // A template is verified through an instance of it.
        let name = name.replace("@.", "@acme.");
        std::fs::write(dir.join(&name), text).unwrap();
        names.push(name);
    }
    names.sort();
    names
}

#[test]
fn systemd_units_verify_and_their_exposure_is_at_most_1_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut units = units_for_analysis(dir.path());
    assert_eq!(units.len(), 6, "{units:?}");
    // The third-party drop-in, merged into an instance the way systemd reads it: its
    // `[Service]` lines after the template's.
    let template = std::fs::read_to_string(dir.path().join("understory-sync@acme.service")).unwrap();
    let drop_in =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/third-party.conf"))
            .unwrap();
    assert!(
        drop_in.contains("LoadCredential=understory-token-key:"),
        "{drop_in}"
    );
    std::fs::write(
        dir.path().join("understory-sync@connected.service"),
        format!("{template}\n{drop_in}"),
    )
    .unwrap();
    units.push("understory-sync@connected.service".to_owned());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze is installed (CI installs it)");
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "verify warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The oneshot units outlast a run's own ceiling (sync.max_run_secs, 6 h by default), so
    // the job stops itself first and systemd's timeout only catches a run that cannot.
    for unit in ["understory-sync.service", "understory-sync@acme.service"] {
        let text = std::fs::read_to_string(dir.path().join(unit)).unwrap();
        assert!(
            text.contains("Type=oneshot") && text.contains("TimeoutStartSec=6h 10min"),
            "{unit}"
        );
    }
    // Every service carries the memory ceiling its operators' guide states (bytes in flight are
    // bounded by sync.max_in_flight_bytes; MemoryMax= is the measured peak with headroom): the
    // job's units in docs/operations.md, Datasette's in docs/analysts.md.
    let docs = ["docs/operations.md", "docs/analysts.md"]
        .map(|f| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap())
        .concat();
    for unit in units.iter().filter(|u| u.ends_with(".service")) {
        let text = std::fs::read_to_string(dir.path().join(unit)).unwrap();
        let max = text
            .lines()
            .find_map(|l| l.strip_prefix("MemoryMax="))
            .unwrap_or_else(|| panic!("{unit} has no MemoryMax="));
        assert!(
            docs.contains(&format!("`MemoryMax={max}`")),
            "{unit}: MemoryMax={max}"
        );
    }
    for unit in units.iter().filter(|u| u.ends_with(".service")) {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager", unit])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_else(|| panic!("{text}"));
        let level: f64 = line
            .split(':')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(level <= 1.2, "{unit}: {line}");
        assert!(line.contains("OK"), "{unit}: {line}");
    }
}

#[test]
fn live_progress_is_drawn_on_a_terminal_and_never_into_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tty.sqlite");
    // `script` gives the binary a pseudo-terminal, as a person's shell would. It ends the session
    // when its own stdin reaches EOF (CI has none), so it gets a pipe held open until it exits.
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{BIN} demo --bookings 2000 --database {}", db.display()),
            "/dev/null",
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux is installed (CI installs it)");
    let stdin = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    let redraws: Vec<&str> = tty.split("\r\x1b[2K").skip(1).collect();
    assert!(!redraws.is_empty(), "a progress line is redrawn in place: {tty}");
    assert!(
        redraws
            .iter()
            .any(|l| l.starts_with("bookings ") && l.contains(" pages ") && l.contains(" orders ")),
        "streams in config order with their pages and rows: {redraws:?}"
    );

    let piped = Command::new(BIN)
        .args(["demo", "--bookings", "2000", "--database"])
        .arg(dir.path().join("pipe.sqlite"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(piped.status.success());
    assert!(
        !String::from_utf8_lossy(&piped.stderr).contains('\r'),
        "no progress line when not a terminal"
    );
}

#[test]
fn logs_are_journald_friendly_under_systemd_and_json_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--bookings", "100", "--database"])
        .arg(dir.path().join("j.sqlite"))
        .env("JOURNAL_STREAM", "8:12345")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let logs: Vec<&str> = err.lines().filter(|l| l.starts_with('<')).collect();
    assert!(
        logs.iter()
            .any(|l| l.starts_with("<6>") && l.contains("stream finished")),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "no colours for the journal: {err}");

    let out = Command::new(BIN)
        .args(["--log-format", "json", "demo", "--bookings", "100", "--database"])
        .arg(dir.path().join("json.sqlite"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let json: Vec<Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        json.iter()
            .any(|v| v["fields"]["message"] == "run finished" && v["level"] == "INFO"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_one_clear_error_with_exit_8_and_loses_nothing() {
    let Job {
        sb,
        dir: _dir,
        cfg,
        db,
    } = job(30).await;
    sync_ok(&cfg);
    let before: Vec<(String, String)> = {
        let c = open(&db);
        let mut stmt = c.prepare("SELECT id, raw_json FROM bookings").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let checkpointed_before: String = open(&db)
        .query_row("SELECT MAX(updated_at) FROM sync_state", [], |r| r.get(0))
        .unwrap();
    sb.mutate(5);
    // No file may grow past 512 KiB: with small pages, served slowly enough (30 ms) that each
    // commits on its own rather than in one group, a few commit before the write-ahead log fills
    // up mid-run, as on a full disk. SIGXFSZ is ignored so the write fails with an error
    // instead of killing the process.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 1024; exec {BIN} sync --config {}",
            cfg.display()
        ))
        .env("UNDERSTORY_CLIENT_SECRET", "sandbox-secret")
        .env("UNDERSTORY_SYNC__API__PAGE_SIZE", "10")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("free space") && line.contains("nothing already stored was lost"),
        "{line}"
    );

    let c = open(&db);
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    let checkpointed_at: String = c
        .query_row("SELECT MAX(updated_at) FROM sync_state", [], |r| r.get(0))
        .unwrap();
    assert!(
        checkpointed_at > checkpointed_before,
        "some pages committed before the disk filled, and their checkpoints with them"
    );
    for (id, _) in &before {
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM bookings WHERE id = ?1", [id], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "booking {id} survived");
    }
    drop(c);
    // With space again, the next run converges.
    sync_ok(&cfg);
    assert_converged(&db, &sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_a_file_an_older_version_left_at_the_previous_schema() {
    // `status` never migrates: right after an upgrade, before the next sync, the file is still
    // at the previous schema, whose `sync_runs` has no `rows_removed`.
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    sync_ok(&cfg);
    let db = dir.path().join("sync.sqlite");
    let c = open(&db);
    let latest: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    c.execute_batch("ALTER TABLE sync_runs DROP COLUMN rows_removed")
        .unwrap();
    c.pragma_update(None, "user_version", latest - 1).unwrap();
    drop(c);
    let st = status_json(&cfg);
    assert_eq!(st["runs"][0]["status"], "succeeded");
    assert!(st["runs"][0]["rows_inserted"].as_u64().unwrap() > 0);
    assert_eq!(
        st["runs"][0]["rows_removed"], 0,
        "unknown before the upgrade: shown as none"
    );
    let version: i64 = open(&db)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, latest - 1, "status changed nothing");
}

/// `status --json --config cfg`, which must exit 0, parsed.
fn status_json(cfg: &Path) -> Value {
    let out = Command::new(BIN)
        .args(["status", "--json", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_mid_run_records_the_run_as_failed_not_running() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let db = dir.path().join("sync.sqlite");
    sync_ok(&cfg);
    let out = sync_cmd(&cfg, "sandbox-secret")
        .env("UNDERSTORY_SYNC_TEST_PANIC_AT", "stream:bookings")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("internal error"), "{err}");
    let (status, ended) = last_run(&db);
    assert_eq!(status, "failed", "the panicking run closed its row");
    assert!(ended.is_some());
    let error: String = open(&db)
        .query_row("SELECT error FROM sync_runs ORDER BY id DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(error.contains("internal error"), "{error}");
    let st = status_json(&cfg);
    assert!(!st.to_string().contains("\"running\""), "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_or_snapshot_in_a_directory_anyone_can_write_is_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let open_db = dir.path().join("open-db");
    let open_snap = dir.path().join("open-snap");
    for (d, mode) in [(&open_db, 0o777), (&open_snap, 0o1777)] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let warned = |err: &str, d: &Path| {
        err.lines()
            .filter(|l| l.contains(&format!("chmod o-w {}", d.display())))
            .count()
    };
    let out = sync_cmd(&cfg, "sandbox-secret")
        .env("UNDERSTORY_SYNC__DATABASE", open_db.join("sync.sqlite"))
        .env("UNDERSTORY_SYNC__SNAPSHOT__PATH", open_snap.join("copy.sqlite"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(warned(&err, &open_db), 1, "{err}");
    assert_eq!(warned(&err, &open_snap), 1, "{err}");
    // The usual private directory: no warning.
    let out = sync_cmd(&cfg, "sandbox-secret")
        .env("UNDERSTORY_SYNC__SNAPSHOT__PATH", dir.path().join("copy.sqlite"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("chmod o-w"), "{err}");
}

/// A run killed while it held the database (out of memory, SIGKILL, a panic inside the
/// writer's transaction) leaves its row `running`; `status` says no process holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tells_a_row_left_running_by_a_dead_process_from_a_run_in_progress() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let db = dir.path().join("sync.sqlite");
    sync_ok(&cfg);
    open(&db)
        .execute(
            "UPDATE sync_runs SET status = 'running', ended_at = NULL WHERE id = (SELECT max(id) FROM sync_runs)",
            [],
        )
        .unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let lock = dir.path().join("sync.sqlite.lock");
    let status_text = || {
        let out = Command::new(BIN)
            .args(["status", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for (pid, dead) in [(gone.id(), true), (std::process::id(), false)] {
        std::fs::write(&lock, format!("{pid}\n")).unwrap();
        let text = status_text();
        assert_eq!(
            text.contains("no process holds the database"),
            dead,
            "pid {pid}: {text}"
        );
    }
}
