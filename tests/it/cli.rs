//! The binary itself: SIGKILL at any point, secrets kept out of logs, exit codes, the demo.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use understory_sandbox::Sandbox;
use understory_sandbox::config::{ClientKey, FaultConfig};

use crate::support::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_understory-sync");

/// The `[api]` and `[retry]` sections of a test config: `sb`'s address, a pace opened wide and
/// backoffs short enough for tests.
pub fn fast_api(sb: &Sandbox) -> String {
    format!(
        r#"[api]
base_url = "{base}"
requests_per_second = 5000
max_requests_per_second = 5000
burst = 500
max_concurrent = 8
[retry]
initial_backoff_ms = 5
max_backoff_ms = 50
rate_limited_wait_secs = 1"#,
        base = sb.base_url()
    )
}

/// A config file for the binary, pointed at `sb`; the secret is passed through the environment.
pub fn write_config(dir: &Path, sb: &Sandbox, extra: &str) -> std::path::PathBuf {
    let path = dir.join("understory-sync.toml");
    // Events and experiences are on unless `extra` says otherwise (a key given twice is an error).
    let on: String = ["events", "experiences"]
        .iter()
        .filter(|s| {
            !extra
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{s} =")))
        })
        .map(|s| format!("{s} = true\n"))
        .collect();
    let text = format!(
        r#"database = "sync.sqlite"
[auth]
token_url = "{token}"
client_id = "sandbox-client"
{fast}
[streams]
{on}{extra}
"#,
        token = sb.token_url(),
        fast = fast_api(sb),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A sandbox whose answers are each delayed by `slow_ms` (0: not at all; more: a run lasts long
/// enough to be interrupted), a config file for the binary pointed at it, and its database path.
pub struct Job {
    pub sb: Sandbox,
    pub dir: tempfile::TempDir,
    pub cfg: std::path::PathBuf,
    pub db: std::path::PathBuf,
}

pub async fn job(slow_ms: u64) -> Job {
    let mut sc = small();
    sc.faults = FaultConfig {
        slow: 1.0,
        slow_ms,
        ..FaultConfig::default()
    };
    let sb = start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let db = dir.path().join("sync.sqlite");
    Job { sb, dir, cfg, db }
}

pub fn sync_cmd(config: &Path, secret: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["sync", "--config"])
        .arg(config)
        .env("UNDERSTORY_CLIENT_SECRET", secret)
        .env_remove("RUST_LOG");
    c
}

/// Runs one sync with the sandbox's secret and asserts it succeeded, showing its stderr if not.
pub fn sync_ok(cfg: &Path) {
    let out = sync_cmd(cfg, "sandbox-secret").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `cmd` and returns it once it has committed `commits` transactions to `db`, still
/// running (the test fails if it finished first: slow the sandbox down).
pub async fn spawn_until_commits(cmd: &mut Command, db: &Path, commits: u32) -> std::process::Child {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let running =
        |child: &mut std::process::Child| child.try_wait().unwrap().is_none() && Instant::now() < deadline;
    while !db.exists() && running(&mut child) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let c = open(db);
    let version = || {
        c.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0)
    };
    let mut last = version();
    let mut seen = 0;
    while seen < commits && running(&mut child) {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let v = version();
        if v != last {
            seen += 1;
            last = v;
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before {commits} commits; slow the sandbox down"
    );
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_several_points_then_a_normal_run_converges() {
    // Slow answers stretch the run so the kills land mid-pass, mid-page.
    let Job {
        sb,
        dir: _dir,
        cfg,
        db,
    } = job(15).await;
    // Migrations and the run's own row take the first three commits; every kill lands later.
    for commits in [4, 8, 14] {
        // Small pages: many commits per pass, so each kill lands inside one.
        let mut child = spawn_until_commits(
            sync_cmd(&cfg, "sandbox-secret").env("UNDERSTORY_SYNC__API__PAGE_SIZE", "10"),
            &db,
            commits,
        )
        .await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Let a few rows change between the crashed run and the next, as in real life.
        sb.mutate(1);
    }
    sb.set_faults(FaultConfig::default());
    let status = sync_cmd(&cfg, "sandbox-secret")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_converged(&db, &sb);
    let abandoned: i64 = open(&db)
        .query_row(
            "SELECT COUNT(*) FROM sync_runs WHERE status = 'abandoned'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(abandoned, 3, "killed runs are recorded as abandoned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_most_verbose_logs_hold_neither_the_secret_nor_any_token() {
    let secret = "Sup3r~secret+value/with=odd&chars";
    let mut sc = small();
    sc.clients = vec![ClientKey {
        client_secret: secret.to_owned(),
        ..ClientKey::default()
    }];
    sc.token_ttl_secs = 1;
    sc.faults = FaultConfig {
        status_503: 0.02,
        ..FaultConfig::default()
    };
    let sb = start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let out = sync_cmd(&cfg, secret).env("RUST_LOG", "trace").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.len() > 10_000, "trace logging was on ({} bytes)", logs.len());
    assert!(!logs.contains(secret), "the client secret leaked into the logs");
    assert!(
        !logs.contains("Sup3r"),
        "part of the client secret leaked into the logs"
    );
    let tokens = sb.issued_tokens();
    assert!(!tokens.is_empty());
    for t in tokens {
        assert!(!logs.contains(&t), "an access token leaked into the logs");
    }
    let mut raw = std::fs::read(dir.path().join("sync.sqlite")).unwrap();
    raw.extend(std::fs::read(dir.path().join("sync.sqlite-wal")).unwrap_or_default());
    assert!(
        !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is not in the database"
    );
    for t in sb.issued_tokens() {
        assert!(
            !raw.windows(t.len()).any(|w| w == t.as_bytes()),
            "an access token is in the database"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_and_auth_errors_are_one_clear_line_with_their_exit_code() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();

    let cfg = write_config(dir.path(), &sb, "[sync]\noverlap_seconds = 5\n");
    let out = sync_cmd(&cfg, "sandbox-secret").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("overlap_seconds"), "{err}");

    let cfg = write_config(dir.path(), &sb, "");
    let out = sync_cmd(&cfg, "not-the-secret").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        line.contains("invalid_client") && line.contains("client secret"),
        "{line}"
    );

    let out = Command::new(BIN)
        .args(["sync", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let cfg = write_config(dir.path(), &sb, "");
    let out = sync_cmd(&cfg, "sandbox-secret")
        .env("UNDERSTORY_SYNC__API__PAGE_SIZE", "500")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("api.page_size"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_pages_beyond_the_retries_fail_with_exit_4_and_keep_the_data() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    sync_ok(&cfg);
    let db = dir.path().join("sync.sqlite");
    let before = fingerprint(&db);
    sb.mutate(1);
    sb.set_faults(FaultConfig {
        malformed: 1.0,
        ..FaultConfig::default()
    });
    let out = sync_cmd(&cfg, "sandbox-secret").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("malformed body"), "{err}");
    assert_eq!(fingerprint(&db), before);
}

#[test]
fn the_demo_runs_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--bookings", "200"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("bookings") && stdout.contains("200 rows"),
        "{stdout}"
    );
    assert!(dir.path().join("understory-demo.sqlite").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_or_group_readable_config_holding_the_secret_is_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[auth]\n", "[auth]\nclient_secret = \"sandbox-secret\"\n");
    std::fs::write(&cfg, text).unwrap();
    let run = |mode: u32| {
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = Command::new(BIN)
            .args(["sync", "--config"])
            .arg(&cfg)
            .env_remove("RUST_LOG")
            .env_remove("UNDERSTORY_CLIENT_SECRET")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(0o644);
    assert!(err.contains("every user can read it"), "{err}");
    assert!(
        !err.contains("sandbox-secret"),
        "the warning never shows the secret"
    );
    let err = run(0o640);
    assert!(
        err.contains("its group (under the package: every analyst) can read it"),
        "{err}"
    );
    assert!(!run(0o600).contains("can read it"));
}
