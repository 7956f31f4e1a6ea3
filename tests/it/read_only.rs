//! The job's read-only command, `status` (text and `--json`), run by an analyst of a server
//! installed as the README says, after root looked at the live file with a plain `sqlite3`:
//! that read-write connection, closing last, copied the WAL into the file and deleted the
//! `-wal` and `-shm`, which the analyst may not create again. The analyst still gets the
//! figures, and no byte beside or in the file changes. Switches users: needs root (CI is root).

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output};

use understory_sync::sync::RunStatus;

use crate::cli::BIN;
use crate::support::*;

/// The service's user and group, and an analyst whose primary group is the service's. Numbers
/// only: no account is added to this machine.
const SERVICE: u32 = 64_120;
const GROUP: u32 = 64_121;
const ANALYST: u32 = 64_122;

/// Whether this process may switch users. Elsewhere the test says it skipped; CI runs as root,
/// so there a skip would hide the test and fails instead.
fn can_switch_users() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI runs the tests as root: this one runs `status` as another user"
    );
    eprintln!("skipped: this test runs `status` as another user and needs root (CI runs as root)");
    false
}

/// `status ARGS…` as the analyst: uid ANALYST, group GROUP and no other (std drops root's
/// supplementary groups when it sets the uid).
fn status_as_analyst(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("status")
        .args(args)
        .uid(ANALYST)
        .gid(GROUP)
        .current_dir("/")
        .env_remove("RUST_LOG")
        .env_remove("UNDERSTORY_SYNC_CONFIG")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file in `dir`: its name, bytes and modification time.
fn files_in(dir: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
                std::fs::metadata(&p).unwrap().modified().unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_as_an_analyst_after_a_plain_sqlite3_deleted_the_wal_and_shm() {
    if !can_switch_users() {
        return;
    }
    let sb = start(small()).await;
    let top = tempfile::tempdir().unwrap();
    // The temporary directory is root's alone; the state directory inside it is the service's.
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = top.path().join("understory-sync");
    std::fs::create_dir(&state).unwrap();
    let db = state.join("understory.sqlite");
    let run = sync(&config(raw_config(&sb, &db))).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");

    // As installed: the state directory 0750 and its files 0640, the service's, its group's.
    for entry in std::fs::read_dir(&state).unwrap() {
        let p = entry.unwrap().path();
        std::os::unix::fs::chown(&p, Some(SERVICE), Some(GROUP)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    std::os::unix::fs::chown(&state, Some(SERVICE), Some(GROUP)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o750)).unwrap();

    // Root's `sqlite3 understory.sqlite 'select …'`: read-write, sqlite3's default, and the last
    // connection to close, which checkpoints and deletes the -wal and -shm.
    let bookings: i64 = open(&db)
        .query_row("SELECT count(*) FROM bookings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bookings as usize, sb.truth().rows("bookings").len());
    let wal = state.join("understory.sqlite-wal");
    let shm = state.join("understory.sqlite-shm");
    assert!(
        !wal.exists() && !shm.exists(),
        "the plain connection deleted them"
    );
    // The analyst may read the file, but neither write it nor create a file beside it.
    let writable = Command::new("sh")
        .args(["-c", "test -w \"$0\" || test -w \"$1\""])
        .arg(&state)
        .arg(&db)
        .uid(ANALYST)
        .gid(GROUP)
        .status()
        .unwrap();
    assert!(!writable.success(), "the analyst cannot write there");
    let before = files_in(&state);

    let out = status_as_analyst(&["--database", &db.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" succeeded "), "the run: {stdout}");
    let rows = stdout
        .split("rows:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("a rows: part: {stdout}"));
    assert!(
        rows.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f == ["bookings", &bookings.to_string()]
        }),
        "bookings {bookings} in {stdout}"
    );
    assert!(files_in(&state) == before, "status created or changed nothing");

    let out = status_as_analyst(&["--database", &db.display().to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"][0]["status"], "succeeded", "{v}");
    assert_eq!(
        v["runs"][0]["rows_inserted"].as_u64(),
        Some(run.total().inserted),
        "{v}"
    );
    assert!(
        v["rows"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["bookings", bookings])),
        "{v}"
    );
    assert!(
        files_in(&state) == before,
        "status --json created or changed nothing"
    );
    assert!(!wal.exists() && !shm.exists());
}
