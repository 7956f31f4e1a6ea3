//! Datasette, as docs/analysts.md's recipe serves the database: the metadata the binary prints, the
//! dashboard's queries with and without their filters, and the pages themselves in headless
//! Chromium (tests/browser/datasette.py) while a sync writes the same file.
//!
//! The browser check needs `datasette` and `datasette-dashboards` (the recipe's pins), the
//! `playwright` package and Debian's `chromium`. Outside CI a machine without them skips it and
//! says so; `.ci/run` installs them, so there a missing one fails. Screenshots go to
//! `$UNDERSTORY_SYNC_SCREENSHOTS` when set (`docs/img` refreshes the docs'), else into
//! Cargo's temporary directory.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::BIN;
use crate::support::open;

/// The analysts' guide, whose Datasette recipe this test follows as written.
const ANALYSTS: &str = include_str!("../../docs/analysts.md");
const CI: &str = include_str!("../../.ci/run");

/// docs/analysts.md's Datasette recipe: the lines of the shell block that installs Datasette.
fn recipe() -> Vec<String> {
    let block = ANALYSTS
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split_once("\n```").map(|(code, _)| code))
        .find(|code| code.contains("pip install datasette=="))
        .expect("docs/analysts.md has a shell block that installs Datasette");
    block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The recipe's line starting with `program`.
fn line_of(recipe: &[String], program: &str) -> String {
    recipe
        .iter()
        .find(|l| l.starts_with(program))
        .unwrap_or_else(|| panic!("docs/analysts.md's Datasette recipe has no `{program}` line"))
        .clone()
}

#[test]
fn the_recipe_and_the_unit_pin_what_ci_installs() {
    let unit = include_str!("../../systemd/understory-sync-datasette.service");
    let lines: Vec<&str> = ANALYSTS
        .lines()
        .chain(unit.lines())
        .filter(|l| l.contains("pip install datasette"))
        .collect();
    assert!(
        lines.len() >= 3,
        "the recipe, the server's and the unit's: {lines:?}"
    );
    for line in lines {
        let pins: Vec<&str> = line.split_whitespace().filter(|w| w.contains("==")).collect();
        assert!(pins.len() >= 2, "{line}");
        for pin in pins {
            assert!(CI.contains(pin), ".ci/run installs {pin}, as `{line}` says");
        }
    }
}

/// Whether this machine can run the browser check: each tool it needs, or why not.
fn browser_tools() -> Result<(), String> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (
            works("datasette", &["--version"]),
            "datasette (pip, the recipe's line)",
        ),
        (
            works("python3", &["-c", "import datasette_dashboards"]),
            "datasette-dashboards (pip)",
        ),
        (works("python3", &["-c", "import playwright"]), "playwright (pip)"),
        (Path::new(&chromium).exists(), "chromium (Debian's package)"),
    ]
    .into_iter()
    .filter(|(ok, _)| !ok)
    .map(|(_, what)| what)
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join(", "))
    }
}

/// A synced demo database, `understory.sqlite` in a new directory, as the recipe names it.
fn demo(bookings: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("understory.sqlite");
    demo_into(&db, bookings);
    (dir, db)
}

fn demo_into(db: &Path, bookings: u32) {
    let out = Command::new(BIN)
        .args(["demo", "--bookings", &bookings.to_string(), "--database"])
        .arg(db)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a recipe line with `sh`, in `dir`, this build's binary first on PATH.
fn shell(dir: &Path, line: &str) -> Command {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("sh");
    c.args(["-c", line]).current_dir(dir).env("PATH", path);
    c
}

/// Datasette, started by the recipe's line on a free loopback port; killed on drop.
struct Datasette {
    child: Child,
    base: String,
}

impl Drop for Datasette {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Datasette {
    fn start(dir: &Path, line: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(
            line.contains("--port 8001"),
            "the recipe serves on port 8001: {line}"
        );
        let line = format!("exec {}", line.replace("--port 8001", &format!("--port {port}")));
        let mut child = shell(dir, &line)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Uvicorn says when it listens; everything before is start-up.
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut said = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(l) if l.contains("Uvicorn running on") => break,
                Ok(l) => said.push(l),
                Err(_) if Instant::now() > deadline => panic!("Datasette did not start: {said:?}"),
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("Datasette exited with {status}: {said:?}")
                    }
                }
            }
        }
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

#[test]
fn the_recipe_serves_every_page_with_data_in_a_real_browser_while_the_job_writes() {
    if let Err(missing) = browser_tools() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the browser check needs {missing}: .ci/run installs them"
        );
        eprintln!("skipped: the browser check needs {missing}");
        return;
    }
    let (dir, db) = demo(400);
    let recipe = recipe();
    let status = shell(
        dir.path(),
        &line_of(&recipe, "understory-sync datasette-metadata"),
    )
    .status()
    .unwrap();
    assert!(status.success(), "the recipe's metadata line");
    let served = Datasette::start(dir.path(), &line_of(&recipe, "datasette serve"));

    // The job writes the live file while the browser reads it.
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || demo_into(&db, 400))
    };
    let shots = std::env::var_os("UNDERSTORY_SYNC_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/datasette.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([served.base.as_str(), "understory"])
        .arg(&shots)
        .output()
        .unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "the browser found faults:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in ["table", "query", "dashboard"] {
        let png = shots.join(format!("datasette-{page}.png"));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{}",
            png.display()
        );
    }
    // Datasette read the live file without writing it: the two runs are both there.
    let runs: i64 = open(&db)
        .query_row(
            "SELECT COUNT(*) FROM sync_runs WHERE status = 'succeeded'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(runs, 2);
}

/// The dashboard's SQL with each `[[ … ]]` clause dropped, or kept with its parameter bound.
fn with_filters(sql: &str, keep: bool) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(open) = rest.find("[[") {
        out.push_str(&rest[..open]);
        let close = rest[open..].find("]]").expect("every [[ is closed") + open;
        if keep {
            out.push_str(&rest[open + 2..close]);
        }
        rest = &rest[close + 2..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_dashboard_chart_has_rows_on_the_demo_with_and_without_its_filters() {
    let (_dir, db) = demo(400);
    let meta = serde_json::to_value(understory_sync::datasette::metadata("understory").unwrap()).unwrap();
    let dashboard = &meta["plugins"]["datasette-dashboards"]["understory"];
    let c = open(&db);
    let experience: String = c
        .query_row(
            "SELECT experience_name FROM bookings_enriched GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("the demo's bookings name their experience");
    let (from, to): (String, String) = c
        .query_row(
            "SELECT substr(MIN(created_at), 1, 10), date('now') FROM bookings",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let params: BTreeMap<&str, &str> = [
        (":date_from", from.as_str()),
        (":date_to", to.as_str()),
        (":experience", experience.as_str()),
    ]
    .into();
    let choices = dashboard["filters"]["experience"]["query"].as_str().unwrap();
    let names: Vec<String> = c
        .prepare(choices)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        names.contains(&experience),
        "the experience filter offers {experience}"
    );
    let charts = dashboard["charts"].as_object().unwrap();
    assert!(charts.len() >= 8, "{}", charts.len());
    for (slug, chart) in charts {
        let sql = chart["query"].as_str().unwrap();
        for keep in [false, true] {
            let text = with_filters(sql, keep);
            let mut stmt = c
                .prepare(&text)
                .unwrap_or_else(|e| panic!("{slug} (filters {keep}): {e}"));
            let names: Vec<String> = (1..=stmt.parameter_count())
                .map(|i| stmt.parameter_name(i).unwrap().to_owned())
                .collect();
            for (i, name) in names.iter().enumerate() {
                let value = params
                    .get(name.as_str())
                    .unwrap_or_else(|| panic!("{slug}: {name} is no filter of the dashboard"));
                stmt.raw_bind_parameter(i + 1, *value).unwrap();
            }
            let mut rows = stmt.raw_query();
            let first = rows.next().unwrap_or_else(|e| panic!("{slug}: {e}"));
            assert!(first.is_some(), "{slug} (filters {keep}) has no rows on the demo");
        }
    }
}

#[test]
fn the_command_names_the_database_after_its_file_and_writes_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("meta.json");
    let out = Command::new(BIN)
        .args([
            "datasette-metadata",
            "--database",
            "/srv/data/acme.snapshot.sqlite",
            "--output",
        ])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    let db = &meta["databases"]["acme.snapshot"];
    assert!(db["tables"]["bookings_enriched"]["columns"]["experience_name"].is_string());
    assert!(db["queries"]["top_experiences"]["title"].is_string());
    assert_eq!(db["tables"]["staging"]["hidden"], serde_json::json!(true));
    let charts = meta["plugins"]["datasette-dashboards"]["understory"]["charts"]
        .as_object()
        .unwrap();
    assert!(charts.values().all(|c| c["db"] == "acme.snapshot"));
}

/// The optional Datasette unit's two commands, as systemd would run them: its `Environment=`
/// substituted, the Datasette docs/analysts.md installs under /opt taken from PATH, its runtime
/// directory a temporary one. The unit's hardening is checked with the job's units (`ops.rs`).
#[test]
fn the_datasette_unit_serves_the_database_as_written() {
    if let Err(missing) = browser_tools() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the unit's check needs {missing}: .ci/run installs them"
        );
        eprintln!("skipped: the unit's check needs {missing}");
        return;
    }
    let unit = include_str!("../../systemd/understory-sync-datasette.service");
    let (dir, db) = demo(100);
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("Environment={key}=")))
            .unwrap_or_else(|| panic!("the unit sets {key}"))
            .to_owned()
    };
    assert_eq!(value("DATABASE"), "/var/lib/understory-sync/understory.sqlite");
    assert_eq!(value("PORT"), "8001");
    let command = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("the unit has {key}"))
            .replace("${DATABASE}", &db.display().to_string())
            .replace("${PORT}", "8001")
            .replace("/run/understory-sync-datasette", &run.display().to_string())
            .replace("/usr/bin/understory-sync", BIN)
            .replace("/opt/understory-sync-datasette/bin/datasette", "datasette")
    };
    let pre = command("ExecStartPre=");
    assert!(shell(dir.path(), &pre).status().unwrap().success(), "{pre}");
    let served = Datasette::start(dir.path(), &command("ExecStart="));
    let out = Command::new("curl")
        .args([
            "-sf",
            &format!(
                "{}/understory/bookings_enriched.json?_shape=array&_size=1",
                served.base
            ),
        ])
        .output()
        .expect("curl is installed (CI installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows[0]["experience_name"].is_string(), "{rows}");
    let meta = std::fs::read_to_string(run.join("metadata.json")).unwrap();
    assert!(meta.contains("\"understory\""), "named after the file");
}
