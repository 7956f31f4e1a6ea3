//! The reliability harness: crash trials, the fault matrix, the bad-input catalogue and the
//! secret sweep, each printing its table. `cargo test` runs a fast slice of each; the long
//! version, whose tables `docs/reliability.md` shows, is
//!
//! ```sh
//! RELIABILITY=long cargo test --release --test it reliability -- --nocapture --test-threads 1
//! ```
//!
//! Every trial is seeded: a failing row names its seed, and `RELIABILITY_SEED=N` replays it.
//! Tables are also written to `target/reliability/<table>.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use understory_sync::sandbox::config::{FaultConfig, RateLimitConfig};
use understory_sync::sandbox::{Sandbox, SandboxConfig};

use crate::cli::{BIN, sync_cmd, write_config};
use crate::support::*;

/// Every stream on, so kills and faults land in every walk mode and the fan-out.
const ALL_STREAMS: &str = "booking_tickets = true\ninformation_request_answers = true\n\
                           ticket_variants = true\ninformation_requests = true\n";

fn long() -> bool {
    std::env::var("RELIABILITY").as_deref() == Ok("long")
}

/// The seeds a harness runs: `n` of them from `base`, or the one `RELIABILITY_SEED` names.
fn seeds(base: u64, n: u64) -> Vec<u64> {
    match std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => (0..n).map(|i| base + i).collect(),
    }
}

/// splitmix64: the harness's own dice, so a seed replays the same moments.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Prints `table` under `title` and writes it to `target/reliability/<file>.md`.
fn publish(file: &str, title: &str, table: &str) {
    println!("\n{title}\n\n{table}");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/reliability");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{file}.md")), format!("{title}\n\n{table}"));
}

/// One run of the binary, with its output.
fn run(cfg: &Path, env: &[(&str, String)]) -> Output {
    let mut cmd = sync_cmd(cfg, "sandbox-secret");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

/// The `error:` lines a failed run printed.
fn error_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_owned)
        .collect()
}

// ---- crash trials ---------------------------------------------------------------------------

#[derive(Default)]
struct Trials {
    trials: usize,
    kills: usize,
    /// Kills that found the run already finished (the moment drawn was past its end).
    finished_first: usize,
    rows: usize,
    lost: usize,
    duplicated: usize,
    differ: usize,
    integrity_failures: usize,
    leftovers: usize,
    failures: Vec<String>,
}

/// One trial: a seeded world, one to four runs each SIGKILLed at a seeded moment (some with the
/// world changing under them, some after it changed between runs), then two clean runs; the
/// database is then compared with the sandbox's ground truth.
async fn crash_trial(seed: u64, t: &mut Trials) {
    let mut dice = Dice(seed);
    let mut sc: SandboxConfig = small();
    sc.seed = seed;
    sc.data.variants = dice.chance(0.5);
    sc.faults = FaultConfig {
        slow: 1.0,
        slow_ms: 1 + dice.below(4),
        ..FaultConfig::default()
    };
    let sb = start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, ALL_STREAMS);
    let db = dir.path().join("sync.sqlite");
    let kills = 1 + dice.below(4);
    for _ in 0..kills {
        if dice.chance(0.5) {
            sb.mutate(1 + dice.below(2) as u32);
        }
        let mut child = sync_cmd(&cfg, "sandbox-secret")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let at = Duration::from_millis(dice.below(1_500));
        if dice.chance(0.3) {
            // The lists change while they are read.
            tokio::time::sleep(at / 2).await;
            sb.mutate(1);
            tokio::time::sleep(at / 2).await;
        } else {
            tokio::time::sleep(at).await;
        }
        t.kills += 1;
        if child.try_wait().unwrap().is_some() {
            t.finished_first += 1;
        } else {
            child.kill().unwrap();
        }
        child.wait().unwrap();
    }
    for _ in 0..2 {
        let out = run(&cfg, &[]);
        if out.status.code() != Some(0) {
            t.failures.push(format!(
                "seed {seed}: a clean run after the kills failed: {:?}",
                error_lines(&out)
            ));
            return;
        }
    }
    let d = divergence(&db, &sb);
    t.trials += 1;
    t.rows += d.rows;
    t.lost += d.lost;
    t.duplicated += d.extra + d.stored_twice;
    t.differ += d.differ;
    if !integrity_ok(&db) {
        t.integrity_failures += 1;
    }
    let staged: i64 = open(&db)
        .query_row("SELECT COUNT(*) FROM staging", [], |r| r.get(0))
        .unwrap();
    t.leftovers += staged as usize;
    if !d.is_clean() || staged > 0 {
        t.failures
            .push(format!("seed {seed}: {d:?}, {staged} staged parents left"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_crash_trials_lose_and_duplicate_nothing() {
    let n = if long() { 60 } else { 4 };
    let mut t = Trials::default();
    for seed in seeds(1_000, n) {
        crash_trial(seed, &mut t).await;
    }
    let mut table = String::new();
    writeln!(
        table,
        "| trials | SIGKILLs | of which the run had ended | rows checked | lost | duplicated | differing | integrity_check failures | staged leftovers |\n\
         |---|---|---|---|---|---|---|---|---|\n\
         | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        t.trials, t.kills, t.finished_first, t.rows, t.lost, t.duplicated, t.differ,
        t.integrity_failures, t.leftovers
    )
    .unwrap();
    writeln!(
        table,
        "\n{} trials, {} lost, {} duplicated",
        t.trials, t.lost, t.duplicated
    )
    .unwrap();
    publish("crash-trials", "Crash trials", &table);
    assert!(t.failures.is_empty(), "{:#?}", t.failures);
    assert!(
        t.kills > t.finished_first,
        "no kill landed mid-run: the trials prove nothing"
    );
    assert_eq!((t.lost, t.duplicated, t.differ), (0, 0, 0));
}

// ---- fault matrix ---------------------------------------------------------------------------

/// How a fault is set up: on the sandbox, and through the job's environment.
struct FaultCase {
    name: &'static str,
    sandbox: fn(&mut SandboxConfig),
    env: &'static [(&'static str, &'static str)],
}

fn faults(rate: f64) -> FaultConfig {
    FaultConfig {
        status_500: rate,
        ..FaultConfig::default()
    }
}

const FAULTS: &[FaultCase] = &[
    FaultCase {
        name: "429 without Retry-After",
        sandbox: |c| {
            c.rate_limit = RateLimitConfig {
                requests_per_window: 120,
                window_ms: 500,
                ..RateLimitConfig::default()
            }
        },
        env: &[],
    },
    FaultCase {
        name: "429 with Retry-After: 1",
        sandbox: |c| {
            c.rate_limit = RateLimitConfig {
                requests_per_window: 120,
                window_ms: 500,
                retry_after_secs: Some(1),
                ..RateLimitConfig::default()
            }
        },
        env: &[],
    },
    FaultCase {
        name: "500",
        sandbox: |c| c.faults = faults(0.15),
        env: &[],
    },
    FaultCase {
        name: "502",
        sandbox: |c| {
            c.faults = FaultConfig {
                status_502: 0.15,
                ..FaultConfig::default()
            }
        },
        env: &[],
    },
    FaultCase {
        name: "503",
        sandbox: |c| {
            c.faults = FaultConfig {
                status_503: 0.15,
                ..FaultConfig::default()
            }
        },
        env: &[],
    },
    FaultCase {
        name: "connection reset",
        sandbox: |c| {
            c.faults = FaultConfig {
                reset: 0.1,
                ..FaultConfig::default()
            }
        },
        env: &[],
    },
    FaultCase {
        name: "slow body past the timeout",
        sandbox: |c| {
            c.faults = FaultConfig {
                slow: 0.02,
                slow_ms: 1_500,
                ..FaultConfig::default()
            }
        },
        env: &[("UNDERSTORY_SYNC__API__REQUEST_TIMEOUT_SECS", "1")],
    },
    FaultCase {
        name: "truncated body",
        sandbox: |c| {
            c.faults = FaultConfig {
                truncated: 0.1,
                ..FaultConfig::default()
            }
        },
        env: &[],
    },
    FaultCase {
        name: "malformed JSON",
        sandbox: |c| {
            c.faults = FaultConfig {
                malformed: 0.1,
                ..FaultConfig::default()
            }
        },
        env: &[],
    },
    FaultCase {
        name: "token expiry (1 s tokens)",
        sandbox: |c| {
            c.token_ttl_secs = 1;
            c.faults = FaultConfig {
                slow: 1.0,
                slow_ms: 3,
                ..FaultConfig::default()
            }
        },
        env: &[("UNDERSTORY_SYNC__AUTH__RENEW_BEFORE_SECS", "0")],
    },
    FaultCase {
        name: "cursor expiry (1 s cursors)",
        sandbox: |c| {
            c.cursor_ttl_secs = 1;
            c.faults = FaultConfig {
                slow: 0.3,
                slow_ms: 400,
                ..FaultConfig::default()
            }
        },
        env: &[],
    },
    FaultCase {
        name: "every cursor refused",
        sandbox: |c| c.cursor_ttl_secs = 0,
        env: &[],
    },
    FaultCase {
        name: "items missing a required field, extra unknown fields (variants)",
        sandbox: |c| c.data.variants = true,
        env: &[],
    },
    FaultCase {
        name: "unknown enum values",
        sandbox: |c| c.data.unknown_enum_share = 0.3,
        env: &[],
    },
    FaultCase {
        name: "nulls for optional fields",
        sandbox: |c| c.data.null_share = 0.5,
        env: &[],
    },
    FaultCase {
        name: "all of the above, mixed",
        sandbox: |c| {
            c.data.variants = true;
            c.data.unknown_enum_share = 0.1;
            c.data.null_share = 0.2;
            c.token_ttl_secs = 2;
            c.rate_limit = RateLimitConfig {
                requests_per_window: 200,
                window_ms: 500,
                retry_after_secs: Some(1),
                ..RateLimitConfig::default()
            };
            c.faults = FaultConfig {
                status_500: 0.03,
                status_502: 0.03,
                status_503: 0.03,
                reset: 0.03,
                truncated: 0.03,
                malformed: 0.03,
                slow: 0.01,
                slow_ms: 1_500,
            };
        },
        env: &[("UNDERSTORY_SYNC__API__REQUEST_TIMEOUT_SECS", "1")],
    },
];

#[derive(Default)]
struct FaultRow {
    runs: usize,
    converged: usize,
    failed_clean: usize,
    corrupted: usize,
    notes: Vec<String>,
}

/// A database a failed run left: everything stored is what the API sent (a subset of the
/// truth, or an older version of a row the fault kept it from refreshing is allowed only after
/// a mutation, and these trials do not mutate), and SQLite finds nothing wrong.
fn stored_correctly(db: &Path, sb: &Sandbox) -> bool {
    !db.exists() || {
        let d = divergence(db, sb);
        d.extra == 0 && d.differ == 0 && d.stored_twice == 0 && integrity_ok(db)
    }
}

/// One fault, one seed: up to four runs with the fault on. Converged: a run succeeded and the
/// database equals the truth. Failed clean: every run failed with one `error:` line and a
/// documented exit code, and what was stored is correct. Anything else is corrupted.
async fn fault_trial(case: &FaultCase, seed: u64, row: &mut FaultRow) {
    let mut sc = small();
    sc.seed = seed;
    (case.sandbox)(&mut sc);
    let sb = start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, ALL_STREAMS);
    let db = dir.path().join("sync.sqlite");
    let env: Vec<(&str, String)> = case.env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    row.runs += 1;
    for _ in 0..4 {
        let out = run(&cfg, &env);
        match out.status.code() {
            Some(0) => {
                if divergence(&db, &sb).is_clean() && integrity_ok(&db) {
                    row.converged += 1;
                } else {
                    row.corrupted += 1;
                    row.notes
                        .push(format!("seed {seed}: succeeded but {:?}", divergence(&db, &sb)));
                }
                return;
            }
            Some(code @ 3..=5) => {
                let lines = error_lines(&out);
                if lines.is_empty() || !stored_correctly(&db, &sb) {
                    row.corrupted += 1;
                    row.notes.push(format!(
                        "seed {seed}: exit {code}, {lines:?}, stored: {:?}",
                        db.exists().then(|| divergence(&db, &sb))
                    ));
                    return;
                }
            }
            other => {
                row.corrupted += 1;
                row.notes
                    .push(format!("seed {seed}: exit {other:?}: {:?}", error_lines(&out)));
                return;
            }
        }
    }
    row.failed_clean += 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_fault_matrix_never_corrupts() {
    let n = if long() { 4 } else { 1 };
    let mut rows: BTreeMap<usize, FaultRow> = BTreeMap::new();
    for (i, case) in FAULTS.iter().enumerate() {
        let row = rows.entry(i).or_default();
        for seed in seeds(2_000 + 100 * i as u64, n) {
            fault_trial(case, seed, row).await;
        }
    }
    let mut table =
        String::from("| fault | runs | converged | failed clean | corrupted |\n|---|---|---|---|---|\n");
    for (i, row) in &rows {
        writeln!(
            table,
            "| {} | {} | {} | {} | {} |",
            FAULTS[*i].name, row.runs, row.converged, row.failed_clean, row.corrupted
        )
        .unwrap();
    }
    publish("fault-matrix", "Fault matrix", &table);
    let notes: Vec<&String> = rows.values().flat_map(|r| &r.notes).collect();
    assert!(rows.values().all(|r| r.corrupted == 0), "{notes:#?}");
    assert!(
        rows.values().map(|r| r.converged).sum::<usize>() > 0,
        "nothing converged: the matrix proves nothing"
    );
}

// ---- bad-input catalogue --------------------------------------------------------------------

/// One operator mistake: how to make it, the exit code the README documents for it, and a word
/// the one `error:` line must contain.
struct Mistake {
    name: &'static str,
    code: i32,
    says: &'static str,
    /// Turns a working setup into the mistake; returns the config path to run with, and extra
    /// environment.
    make: fn(&Setup) -> Made,
}

/// The config file to run with, and the environment to run it in.
type Made = (PathBuf, Vec<(&'static str, String)>);

/// A working config and a database one clean run filled.
struct Setup {
    dir: PathBuf,
    cfg: PathBuf,
    db: PathBuf,
    token_url: String,
}

impl Setup {
    /// The working config's text with `from` replaced by `to`, written beside it.
    fn edited(&self, from: &str, to: &str) -> PathBuf {
        let text = std::fs::read_to_string(&self.cfg).unwrap();
        assert!(text.contains(from), "{from:?} not in the config");
        let path = self.dir.join("edited.toml");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        path
    }
    fn appended(&self, extra: &str) -> PathBuf {
        let text = std::fs::read_to_string(&self.cfg).unwrap();
        let path = self.dir.join("edited.toml");
        std::fs::write(&path, format!("{extra}\n{text}")).unwrap();
        path
    }
    fn env(&self, key: &'static str, value: impl Into<String>) -> Made {
        (self.cfg.clone(), vec![(key, value.into())])
    }
}

const MISTAKES: &[Mistake] = &[
    Mistake {
        name: "config file missing",
        code: 2,
        says: "no-such.toml does not exist; copy config/understory-sync.toml there",
        make: |s| (s.dir.join("no-such.toml"), vec![]),
    },
    Mistake {
        name: "config file unreadable (a directory)",
        code: 2,
        says: "a-dir.toml cannot be read (Is a directory",
        make: |s| {
            let d = s.dir.join("a-dir.toml");
            std::fs::create_dir_all(&d).unwrap();
            (d, vec![])
        },
    },
    Mistake {
        name: "TOML syntax error",
        code: 2,
        says: "TOML syntax error at line 1, column 25 (key `database`): invalid basic string",
        make: |s| (s.appended("database = \"unterminated"), vec![]),
    },
    Mistake {
        name: "unknown top-level key",
        code: 2,
        says: "unknown field `databse`, expected one of",
        make: |s| (s.appended("databse = \"x.sqlite\""), vec![]),
    },
    Mistake {
        name: "unknown stream",
        code: 2,
        says: "there is no stream `giftcards`; the streams are",
        make: |s| (s.edited("[streams]\n", "[streams]\ngiftcards = true\n"), vec![]),
    },
    Mistake {
        name: "a number where a path belongs (database = 5)",
        code: 2,
        says: "config key `database`: expected a path in quotes, got 5",
        make: |s| (s.edited("database = \"sync.sqlite\"", "database = 5"), vec![]),
    },
    Mistake {
        name: "wrong type (max_concurrent = \"four\")",
        code: 2,
        says: "invalid type: string, expected an integer for key `api.max_concurrent`",
        make: |s| {
            (
                s.edited("max_concurrent = 8", "max_concurrent = \"four\""),
                vec![],
            )
        },
    },
    Mistake {
        name: "zero rate",
        code: 2,
        says: "config key `api.requests_per_second`: must be at least 1",
        make: |s| s.env("UNDERSTORY_SYNC__API__REQUESTS_PER_SECOND", "0"),
    },
    Mistake {
        name: "negative rate",
        code: 2,
        says: "UNDERSTORY_SYNC__API__REQUESTS_PER_SECOND: invalid type: 64-bit integer, expected an unsigned",
        make: |s| s.env("UNDERSTORY_SYNC__API__REQUESTS_PER_SECOND", "-5"),
    },
    Mistake {
        name: "bad cron expression",
        code: 2,
        says: "config key `schedule`: 'every day at noon': it has 4 fields",
        make: |s| s.env("UNDERSTORY_SYNC__SCHEDULE", "every day at noon"),
    },
    Mistake {
        name: "a schedule that never fires (February 30th)",
        code: 2,
        says: "config key `schedule`: '0 0 30 2 *': it never fires",
        make: |s| s.env("UNDERSTORY_SYNC__SCHEDULE", "0 0 30 2 *"),
    },
    Mistake {
        name: "a minute out of range",
        code: 2,
        says: "minute 61 is out of range 0-59",
        make: |s| s.env("UNDERSTORY_SYNC__SCHEDULE", "61 * * * *"),
    },
    Mistake {
        name: "a fractional rate",
        code: 2,
        says: "UNDERSTORY_SYNC__API__REQUESTS_PER_SECOND: 0.5 is not a whole number",
        make: |s| s.env("UNDERSTORY_SYNC__API__REQUESTS_PER_SECOND", "0.5"),
    },
    Mistake {
        name: "base_url not a URL",
        code: 2,
        says: "config key `api.base_url`: 'api.understory.io' is not a URL",
        make: |s| s.env("UNDERSTORY_SYNC__API__BASE_URL", "api.understory.io"),
    },
    Mistake {
        name: "plain http to a non-loopback host",
        code: 2,
        says: "config key `api.base_url`: 'http://example.com/' is plain http",
        make: |s| s.env("UNDERSTORY_SYNC__API__BASE_URL", "http://example.com/"),
    },
    Mistake {
        name: "plain http token_url to a non-loopback host",
        code: 2,
        says: "config key `auth.token_url`: 'http://auth.example.com/oauth2/token' is plain http",
        make: |s| {
            s.env(
                "UNDERSTORY_SYNC__AUTH__TOKEN_URL",
                "http://auth.example.com/oauth2/token",
            )
        },
    },
    Mistake {
        name: "client secret missing",
        code: 2,
        says: "config key `auth.client_secret`: missing: set auth.client_secret_file",
        make: |s| s.env("UNDERSTORY_CLIENT_SECRET", ""),
    },
    Mistake {
        name: "secret file unreadable",
        code: 2,
        says: "config key `auth.client_secret_file`: cannot read",
        make: |s| {
            (
                s.edited("[auth]\n", "[auth]\nclient_secret_file = \"no-such-secret\"\n"),
                vec![("UNDERSTORY_CLIENT_SECRET", String::new())],
            )
        },
    },
    Mistake {
        name: "wrong client secret",
        code: 3,
        says: "the token endpoint refused the credentials: invalid_client",
        make: |s| s.env("UNDERSTORY_CLIENT_SECRET", "not-the-secret"),
    },
    Mistake {
        name: "token endpoint unreachable",
        code: 4,
        says: "the token endpoint is unreachable: could not connect",
        make: |s| {
            s.env(
                "UNDERSTORY_SYNC__AUTH__TOKEN_URL",
                s.token_url
                    .replace(s.token_url.split('/').nth(2).unwrap(), "127.0.0.1:9"),
            )
        },
    },
    Mistake {
        name: "database in a missing directory",
        code: 8,
        says: "/gone does not exist; create it, or change `database`",
        make: |s| {
            s.env(
                "UNDERSTORY_SYNC__DATABASE",
                s.dir.join("gone/x.sqlite").display().to_string(),
            )
        },
    },
    Mistake {
        name: "database in a read-only directory",
        code: 8,
        says: "ro-test.sqlite.lock: permission denied for user",
        make: |s| {
            // Root writes through file modes; sysfs refuses even root a new file.
            if runs_as_root() {
                return s.env("UNDERSTORY_SYNC__DATABASE", "/sys/ro-test.sqlite");
            }
            let ro = s.dir.join("ro");
            std::fs::create_dir_all(&ro).unwrap();
            set_mode(&ro, 0o555);
            s.env(
                "UNDERSTORY_SYNC__DATABASE",
                ro.join("x.sqlite").display().to_string(),
            )
        },
    },
    Mistake {
        name: "database file is not SQLite",
        code: 8,
        says: "not-sqlite.sqlite is not a SQLite database",
        make: |s| {
            let f = s.dir.join("not-sqlite.sqlite");
            std::fs::write(&f, "these are my notes, not a database\n".repeat(200)).unwrap();
            s.env("UNDERSTORY_SYNC__DATABASE", f.display().to_string())
        },
    },
    Mistake {
        name: "database from a newer schema version",
        code: 8,
        says: "was migrated by a newer understory-sync to schema version 999; this one knows up to",
        make: |s| {
            let f = s.dir.join("newer.sqlite");
            std::fs::copy(&s.db, &f).unwrap();
            open(&f).pragma_update(None, "user_version", 999).unwrap();
            s.env("UNDERSTORY_SYNC__DATABASE", f.display().to_string())
        },
    },
    Mistake {
        name: "database locked by another sync",
        code: 6,
        says: "another understory-sync (pid ",
        make: |s| (s.cfg.clone(), vec![("HOLD_LOCK", String::new())]),
    },
];

/// Whether the tests run as root (as CI containers often do).
fn runs_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        .unwrap_or(false)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file of the database (the file, its WAL), read whole: "untouched" is byte for byte.
/// An empty WAL holds no frame, so it counts as none: the job keeps its `-wal` file, emptied,
/// when it closes (see `store::keep_wal_files`), so that analysts can open the file read-only.
fn database_bytes(db: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for suffix in ["", "-wal"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(bytes) = std::fs::read(&p)
            && !(suffix == "-wal" && bytes.is_empty())
        {
            files.push((suffix.to_owned(), bytes));
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_bad_input_catalogue() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let setup = Setup {
        dir: dir.path().to_owned(),
        cfg: cfg.clone(),
        db: dir.path().join("sync.sqlite"),
        token_url: sb.token_url(),
    };
    assert_eq!(run(&cfg, &[]).status.code(), Some(0));
    // Everything into the database file and the WAL emptied: a run that writes nothing then
    // leaves every byte as it was.
    open(&setup.db)
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let mut table = String::from(
        "| mistake | exit code | the one line it prints | database untouched |\n|---|---|---|---|\n",
    );
    let mut wrong = Vec::new();
    let main_before = database_bytes(&setup.db);
    for m in MISTAKES {
        let (path, env) = (m.make)(&setup);
        // The database the mistake points at, if it points elsewhere and that file exists.
        let target = env
            .iter()
            .find(|(k, _)| *k == "UNDERSTORY_SYNC__DATABASE")
            .map(|(_, v)| PathBuf::from(v))
            .filter(|p| p.exists())
            .unwrap_or_else(|| setup.db.clone());
        let before = database_bytes(&target);
        let _lock = env
            .iter()
            .any(|(k, _)| *k == "HOLD_LOCK")
            .then(|| understory_sync::lock::acquire(&setup.db).unwrap());
        let mut cmd = Command::new(BIN);
        cmd.args(["sync", "--config"])
            .arg(&path)
            .env("UNDERSTORY_CLIENT_SECRET", "sandbox-secret")
            .env_remove("RUST_LOG");
        for (k, v) in env.iter().filter(|(k, _)| *k != "HOLD_LOCK") {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        drop(_lock);
        let lines = error_lines(&out);
        let untouched = database_bytes(&target) == before && database_bytes(&setup.db) == main_before;
        let line = lines.first().cloned().unwrap_or_default();
        writeln!(
            table,
            "| {} | {} | `{}` | {} |",
            m.name,
            out.status.code().map_or("signal".into(), |c| c.to_string()),
            line.replace('|', "\\|")
                .replace(setup.dir.to_str().unwrap(), "$DIR"),
            if untouched { "yes" } else { "**no**" }
        )
        .unwrap();
        if out.status.code() != Some(m.code) || lines.len() != 1 || !line.contains(m.says) || !untouched {
            wrong.push(format!(
                "{}: exit {:?} (want {}), lines {lines:?} (want one naming {:?}), untouched {untouched}",
                m.name,
                out.status.code(),
                m.code,
                m.says
            ));
        }
    }
    publish("bad-input", "Bad-input catalogue", &table);
    assert!(MISTAKES.len() >= 20);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

// ---- secret hygiene -------------------------------------------------------------------------

/// Runs the binary through its paths — a sync at trace level with JSON logs, every failure the
/// catalogue above makes that reaches the network, `check`, `status`, and a panic — and searches
/// everything they wrote for the client secret and every access token the sandbox issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_no_output_holds_a_secret() {
    const SECRET: &str = "s3cret-Hygiene-4f9a";
    let mut sc = small();
    sc.clients[0].client_secret = SECRET.into();
    sc.token_ttl_secs = 1;
    sc.faults = FaultConfig {
        status_500: 0.05,
        reset: 0.03,
        malformed: 0.03,
        slow: 1.0,
        slow_ms: 2,
        ..FaultConfig::default()
    };
    let sb = start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.prom");
    let cfg = write_config(
        dir.path(),
        &sb,
        &format!("{ALL_STREAMS}[metrics]\ntextfile = \"{}\"\n", metrics.display()),
    );
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut exec = |what: &str, args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--config")
            .arg(&cfg)
            .env("UNDERSTORY_CLIENT_SECRET", SECRET)
            .env("RUST_LOG", "trace");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        outputs.push((format!("{what} stdout"), out.stdout));
        outputs.push((format!("{what} stderr"), out.stderr));
    };
    exec("sync, trace", &["sync"], &[]);
    exec("sync, JSON logs", &["--log-format", "json", "sync"], &[]);
    exec(
        "sync, JSON logs, journald",
        &["sync"],
        &[("JOURNAL_STREAM", "8:1234")],
    );
    exec("check", &["check"], &[]);
    exec("status", &["status"], &[]);
    exec("status --json", &["status", "--json"], &[]);
    exec(
        "wrong secret",
        &["sync"],
        &[("UNDERSTORY_CLIENT_SECRET", "wrong-but-secret-too")],
    );
    exec(
        "API down",
        &["sync"],
        &[("UNDERSTORY_SYNC__API__BASE_URL", "http://127.0.0.1:9/")],
    );
    exec(
        "token endpoint down",
        &["sync"],
        &[("UNDERSTORY_SYNC__AUTH__TOKEN_URL", "http://127.0.0.1:9/t")],
    );
    exec(
        "bad config",
        &["sync"],
        &[("UNDERSTORY_SYNC__API__BURST", "zero")],
    );
    exec(
        "panic",
        &["--log-format", "json", "sync"],
        &[("UNDERSTORY_SYNC_TEST_PANIC", "1")],
    );
    for suffix in ["", "-wal"] {
        let p = dir.path().join(format!("sync.sqlite{suffix}"));
        if let Ok(bytes) = std::fs::read(&p) {
            outputs.push((format!("database{suffix}"), bytes));
        }
    }
    outputs.push((
        "metrics textfile".into(),
        std::fs::read(&metrics).unwrap_or_default(),
    ));
    let tokens = sb.issued_tokens();
    assert!(
        tokens.len() > 2,
        "1 s tokens were renewed during the runs: {}",
        tokens.len()
    );
    let panicked = outputs
        .iter()
        .any(|(what, out)| what == "panic stderr" && String::from_utf8_lossy(out).contains("panic"));
    assert!(panicked, "the panic path ran");
    let mut table = String::from("| output | bytes | holds the secret or a token |\n|---|---|---|\n");
    let mut leaks = Vec::new();
    for (what, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes);
        let found: Vec<&str> = std::iter::once(SECRET)
            .chain(tokens.iter().map(String::as_str))
            .chain(std::iter::once("wrong-but-secret-too"))
            .filter(|s| text.contains(*s))
            .collect();
        writeln!(
            table,
            "| {what} | {} | {} |",
            bytes.len(),
            if found.is_empty() { "no" } else { "**yes**" }
        )
        .unwrap();
        if !found.is_empty() {
            leaks.push(format!("{what}: {} secret(s)", found.len()));
        }
    }
    publish("secrets", "Secret sweep", &table);
    assert!(leaks.is_empty(), "{leaks:?}");
}
