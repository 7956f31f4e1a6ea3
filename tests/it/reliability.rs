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

use understory_sandbox::config::{FaultConfig, RateLimitConfig};
use understory_sandbox::{Sandbox, SandboxConfig};

use crate::cli::{BIN, sync_cmd, write_config};
use crate::support::*;

/// Every stream on, so kills and faults land in every walk mode and the fan-out: the
/// `[streams]` lines of a config.
fn all_streams() -> String {
    crate::account::optional()
        .iter()
        .map(|s| format!("{s} = true\n"))
        .collect()
}

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

/// The stretches of a run a kill is aimed at, named as `docs/reliability.md` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// A first load's crawl of a list whose key stays in place (it has per-parent streams).
    BootstrapWalk,
    /// A first load's crawl of a list whose key is set aside: rows are appended, not upserted.
    KeylessAppend,
    /// The indexes set aside being built once the first load completes.
    IndexBuild,
    /// The incremental pass (`sort=-updated_at`) that follows a bootstrap, and every later run's.
    CatchUp,
    /// Per-parent lists fetched for new and changed parents.
    FanOut,
    /// The consents' complete scan.
    ConsentScan,
    /// Items a scan missed, or quarantined, asked for one by one.
    ById,
}

const PHASES: [Phase; 7] = [
    Phase::BootstrapWalk,
    Phase::KeylessAppend,
    Phase::IndexBuild,
    Phase::CatchUp,
    Phase::FanOut,
    Phase::ConsentScan,
    Phase::ById,
];

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::BootstrapWalk => "bootstrap walk",
            Self::KeylessAppend => "keyless append",
            Self::IndexBuild => "index build",
            Self::CatchUp => "catch-up",
            Self::FanOut => "fan-out",
            Self::ConsentScan => "consent scan",
            Self::ById => "by-id confirmation",
        }
    }

    /// How many of the phase's requests may pass before the kill: drawn below this.
    fn spread(self) -> u64 {
        match self {
            Self::BootstrapWalk | Self::KeylessAppend => 20,
            Self::FanOut => 40,
            Self::ConsentScan => 8,
            Self::CatchUp => 3,
            Self::ById | Self::IndexBuild => 1,
        }
    }

    /// The phase a request belongs to, as the server saw it; `keyless` names the lists whose
    /// first load appends (their stream has no per-parent stream on).
    fn of(a: &understory_sandbox::Arrival, keyless: &[&str]) -> Option<Self> {
        let segments: Vec<&str> = a.path.strip_prefix("/v1/")?.split('/').collect();
        let param = |p: &str| a.query.split('&').any(|kv| kv == p);
        match segments.as_slice() {
            ["marketing-consents"] => Some(Self::ConsentScan),
            [list] if param("sort=%2Bcreated_at") || param("sort=+created_at") => {
                Some(if keyless.contains(list) {
                    Self::KeylessAppend
                } else {
                    Self::BootstrapWalk
                })
            }
            // `limit=1` is a bootstrap's probe for the newest update, not a catch-up page.
            [_] if param("sort=-updated_at") && !param("limit=1") => Some(Self::CatchUp),
            [_, _] => Some(Self::ById),
            [_, _, _] => Some(Self::FanOut),
            _ => None,
        }
    }
}

/// The two configurations users run: the default one (the example config's streams, so
/// `bookings` takes the keyless first load and `orders` fans out), and every stream on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Streams {
    Default,
    EveryStream,
}

impl Streams {
    fn streams(self) -> String {
        match self {
            Self::Default => String::new(),
            Self::EveryStream => all_streams(),
        }
    }
    /// Lists whose first load sets their key aside (no per-parent stream of theirs is on).
    /// With every stream on there is none: `bookings` and `orders` fan out, and the other lists
    /// are scans.
    fn keyless(self) -> &'static [&'static str] {
        match self {
            Self::Default => &["bookings"],
            Self::EveryStream => &[],
        }
    }
    /// The streams the setup turns on: each must have run by the end of a trial.
    fn enabled(self) -> Vec<&'static str> {
        understory_sync::streams::ALL
            .iter()
            .filter(|s| self == Self::EveryStream || s.enabled_by_default)
            .map(|s| s.name)
            .collect()
    }
    fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::EveryStream => "every stream",
        }
    }
}

/// A config for the binary pointed at `sb`, with only the streams `setup` turns on.
fn trial_config(dir: &Path, sb: &Sandbox, setup: Streams) -> PathBuf {
    let path = dir.join("understory-sync.toml");
    let text = format!(
        "database = \"sync.sqlite\"\n[auth]\ntoken_url = \"{}\"\nclient_id = \"sandbox-client\"\n{}\n[streams]\n{}",
        sb.token_url(),
        // Pages of ten make many pages of a small world: many moments to aim at.
        crate::cli::fast_api(sb).replace("[retry]", "page_size = 10\n[retry]"),
        setup.streams()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[derive(Default)]
struct Trials {
    trials: usize,
    rows: usize,
    /// Per phase: kills aimed at it, and kills that landed in it (in each setup).
    aimed: BTreeMap<Phase, usize>,
    landed: BTreeMap<Phase, usize>,
    landed_in: BTreeMap<(Phase, &'static str), usize>,
    /// Kills whose run ended (or left the phase) before the moment came.
    missed: usize,
    lost: usize,
    duplicated: usize,
    differ: usize,
    integrity_failures: usize,
    leftovers: usize,
    set_aside: usize,
    failures: Vec<String>,
}

/// Whether the database at `db` is still in a first load: no file yet, or indexes set aside.
fn first_load(db: &Path) -> bool {
    !db.exists()
        || open(db)
            .query_row("SELECT count(*) FROM deferred_indexes", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_ok_and(|n| n > 0)
}

/// One run SIGKILLed at a moment drawn from its progress as the server sees it: after the
/// `skip`-th request of `target` was answered (or, for the index build, as soon as the job says
/// it has begun). Returns the phase the kill landed in, if it landed in one; an error if the run
/// ended by itself with a failure.
async fn killed_run(
    cfg: &Path,
    sb: &Sandbox,
    setup: Streams,
    target: Phase,
    skip: u64,
    mutate_midway: bool,
) -> Result<Option<Phase>, String> {
    sb.record();
    let mut cmd = sync_cmd(cfg, "sandbox-secret");
    if let Ok(level) = std::env::var("RELIABILITY_LOG") {
        cmd.env("RUST_LOG", level);
    }
    let log_path = cfg.with_file_name("killed-runs.log");
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        writeln!(f, "---- a run aimed at {target:?} after {skip} of its requests").unwrap();
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = rustix::process::Pid::from_child(&child);
    let stderr = child.stderr.take().unwrap();
    // The build has no request to count: the job's own line announcing it is the moment, and
    // the reader kills on the spot, before the build can finish. It notes whose build it was.
    let building = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let reader = {
        let building = std::sync::Arc::clone(&building);
        std::thread::spawn(move || {
            use std::io::{BufRead as _, Write as _};
            // Kept beside the database (a failing trial keeps its directory).
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .ok();
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(f) = log.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                if target == Phase::IndexBuild && line.contains("building the indexes set aside") {
                    let mut building = building.lock().unwrap();
                    if building.is_none() {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                        let table = line
                            .split("stream=\"")
                            .nth(1)
                            .and_then(|rest| rest.split('"').next())
                            .unwrap_or_default();
                        *building = Some(table.to_owned());
                    }
                }
            }
        })
    };
    let mut seen: Vec<Option<Phase>> = Vec::new();
    let mut hits = 0u64;
    let mut mutated = !mutate_midway;
    let mut killed_at = None;
    while child.try_wait().unwrap().is_none() {
        for a in sb.arrivals_since(seen.len()) {
            seen.push(Phase::of(&a, setup.keyless()));
            if seen.last() == Some(&Some(target)) {
                hits += 1;
            }
        }
        if !mutated && hits * 2 >= skip {
            // The lists change while they are read.
            sb.mutate(1);
            mutated = true;
        }
        if target != Phase::IndexBuild && hits > skip {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            killed_at = Some(seen.len());
            break;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    if let Some(code) = status.code() {
        // It ended on its own before the moment came: that is a miss, but only a clean one.
        return if code == 0 {
            Ok(None)
        } else {
            Err(format!(
                "a run aimed at {target:?} ended by itself with exit {code}"
            ))
        };
    }
    Ok(match target {
        // Landed in the build only if that table's indexes are still set aside: its
        // transaction had not committed.
        Phase::IndexBuild => building
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|table| set_aside(&cfg.with_file_name("sync.sqlite"), table))
            .then_some(Phase::IndexBuild),
        // Landed in the phase if it answered one of the last requests before the kill (the
        // others in flight belong to streams walking beside it).
        _ => {
            let upto = killed_at.unwrap_or(seen.len());
            seen[upto.saturating_sub(4)..upto]
                .contains(&Some(target))
                .then_some(target)
        }
    })
}

/// Whether `table` has indexes set aside in the database at `db`.
fn set_aside(db: &Path, table: &str) -> bool {
    open(db)
        .query_row(
            "SELECT count(*) FROM deferred_indexes WHERE tbl = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n > 0)
}

/// One trial: a seeded world in one of the two setups, two to four runs each SIGKILLed at a
/// moment aimed at a phase the database's state can reach (drawn from the seed's dice), the world changing before some runs and during others; then two clean runs, and
/// every table compared with the sandbox's ground truth.
async fn crash_trial(seed: u64, setup: Streams, t: &mut Trials) {
    let mut dice = Dice(seed);
    let mut sc: SandboxConfig = small();
    sc.seed = seed;
    sc.data.variants = dice.chance(0.5);
    sc.mutate.new_share = 0.05;
    sc.mutate.update_share = 0.1;
    sc.mutate.consent_churn_share = 0.05;
    sc.faults = FaultConfig {
        slow: 1.0,
        slow_ms: 1 + dice.below(2),
        ..FaultConfig::default()
    };
    let sb = start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = trial_config(dir.path(), &sb, setup);
    let db = dir.path().join("sync.sqlite");
    let mut aimed = Vec::new();
    for _ in 0..2 + dice.below(3) {
        let loading = first_load(&db);
        let reachable: Vec<Phase> = PHASES
            .into_iter()
            .filter(|p| match p {
                Phase::KeylessAppend => loading && !setup.keyless().is_empty(),
                Phase::BootstrapWalk | Phase::IndexBuild => loading,
                // A completed bootstrap is followed by its catch-up in the same run, and items
                // are asked for by id in any run (removals, quarantine).
                Phase::CatchUp | Phase::ById | Phase::FanOut | Phase::ConsentScan => true,
            })
            .collect();
        let target = reachable[dice.below(reachable.len() as u64) as usize];
        aimed.push(target);
        // After a first load only a changed world has parents to fan out to and consents to
        // confirm gone.
        if !loading || dice.chance(0.3) {
            sb.mutate(1 + dice.below(2) as u32);
        }
        let skip = dice.below(target.spread());
        *t.aimed.entry(target).or_default() += 1;
        match killed_run(&cfg, &sb, setup, target, skip, dice.chance(0.3)).await {
            Ok(Some(p)) => {
                *t.landed.entry(p).or_default() += 1;
                *t.landed_in.entry((p, setup.name())).or_default() += 1;
            }
            Ok(None) => t.missed += 1,
            Err(why) => t.failures.push(format!("seed {seed}: {why}")),
        }
    }
    for n in 1..=2 {
        let level = std::env::var("RELIABILITY_LOG").unwrap_or_else(|_| "info".into());
        let out = run(&cfg, &[("RUST_LOG", level)]);
        let _ = std::fs::write(dir.path().join(format!("clean-run-{n}.log")), &out.stderr);
        if out.status.code() != Some(0) {
            t.failures.push(format!(
                "seed {seed}: a clean run after the kills failed: {:?}",
                error_lines(&out)
            ));
            return;
        }
    }
    let never = never_ran(&db, &setup.enabled());
    if !never.is_empty() {
        t.failures
            .push(format!("seed {seed}: enabled streams that never ran: {never:?}"));
    }
    let d = divergence(&db, &sb);
    t.trials += 1;
    t.rows += d.rows;
    t.lost += d.lost;
    t.duplicated += d.extra + d.stored_twice;
    t.differ += d.differ;
    t.set_aside += d.set_aside;
    if !integrity_ok(&db) {
        t.integrity_failures += 1;
    }
    let staged: i64 = open(&db)
        .query_row("SELECT COUNT(*) FROM staging", [], |r| r.get(0))
        .unwrap();
    t.leftovers += staged as usize;
    if !d.is_clean() || staged > 0 {
        t.failures.push(format!(
            "seed {seed}: {d:?}, {staged} staged parents left, kills aimed at {aimed:?}, {:?}, kept in {}",
            lost_rows(&db, &sb),
            dir.keep().display()
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_crash_trials_lose_and_duplicate_nothing() {
    // The long version runs until every phase has had ten kills land in it.
    let most = if long() { 200 } else { 4 };
    let mut t = Trials::default();
    for seed in seeds(1_000, most) {
        let setup = if seed % 2 == 0 {
            Streams::Default
        } else {
            Streams::EveryStream
        };
        crash_trial(seed, setup, &mut t).await;
        if long() && PHASES.iter().all(|p| t.landed.get(p).copied().unwrap_or(0) >= 10) {
            break;
        }
    }
    let mut table = String::from(
        "| phase | kills aimed at it | landed in it | in the default setup | with every stream on |\n|---|---|---|---|---|\n",
    );
    for p in PHASES {
        let count = |m: Option<&usize>| m.copied().unwrap_or(0);
        writeln!(
            table,
            "| {} | {} | {} | {} | {} |",
            p.name(),
            count(t.aimed.get(&p)),
            count(t.landed.get(&p)),
            count(t.landed_in.get(&(p, Streams::Default.name()))),
            count(t.landed_in.get(&(p, Streams::EveryStream.name())))
        )
        .unwrap();
    }
    let landed: usize = t.landed.values().sum();
    writeln!(
        table,
        "\n| trials | SIGKILLs | landed in their phase | rows checked | lost | duplicated | differing | integrity_check failures | staged leftovers | indexes left aside |\n\
         |---|---|---|---|---|---|---|---|---|---|\n\
         | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        t.trials, landed + t.missed, landed, t.rows, t.lost, t.duplicated, t.differ,
        t.integrity_failures, t.leftovers, t.set_aside
    )
    .unwrap();
    publish("crash-trials", "Crash trials", &table);
    assert!(t.failures.is_empty(), "{:#?}", t.failures);
    assert!(landed > 0, "no kill landed mid-run: the trials prove nothing");
    if long() {
        let short: Vec<_> = PHASES
            .iter()
            .filter(|p| t.landed.get(p).copied().unwrap_or(0) < 10)
            .map(|p| p.name())
            .collect();
        assert!(short.is_empty(), "phases with fewer than ten kills: {short:?}");
    }
    assert_eq!((t.lost, t.duplicated, t.differ, t.set_aside), (0, 0, 0, 0));
}

// ---- fault matrix ---------------------------------------------------------------------------

/// How a fault is set up: on the sandbox, and through the job's environment.
struct FaultCase {
    name: &'static str,
    sandbox: fn(&mut SandboxConfig),
    env: &'static [(&'static str, &'static str)],
    /// Why the fault is meant to fail clean every time instead of converging (`None`: it must
    /// converge within `RUNS` runs, on every seed).
    fails_clean: Option<&'static str>,
}

/// Runs a fault trial may take to converge with the fault still on.
const RUNS: usize = 4;

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
                shape: Default::default(),
                ..RateLimitConfig::default()
            }
        },
        env: &[],
        fails_clean: None,
    },
    FaultCase {
        name: "429 with Retry-After: 1",
        sandbox: |c| {
            c.rate_limit = RateLimitConfig {
                requests_per_window: 120,
                window_ms: 500,
                shape: Default::default(),
                retry_after_secs: Some(1),
                ..RateLimitConfig::default()
            }
        },
        env: &[],
        fails_clean: None,
    },
    FaultCase {
        name: "500",
        sandbox: |c| c.faults = faults(0.15),
        env: &[],
        fails_clean: None,
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
        fails_clean: None,
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
        fails_clean: None,
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
        fails_clean: None,
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
        fails_clean: None,
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
        fails_clean: None,
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
        fails_clean: None,
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
        fails_clean: None,
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
        fails_clean: None,
    },
    FaultCase {
        name: "every cursor refused",
        sandbox: |c| c.cursor_ttl_secs = 0,
        env: &[],
        fails_clean: None,
    },
    FaultCase {
        name: "items missing a required field, extra unknown fields (variants)",
        sandbox: |c| c.data.variants = true,
        env: &[],
        fails_clean: None,
    },
    FaultCase {
        name: "unknown enum values",
        sandbox: |c| c.data.unknown_enum_share = 0.3,
        env: &[],
        fails_clean: None,
    },
    FaultCase {
        name: "nulls for optional fields",
        sandbox: |c| c.data.null_share = 0.5,
        env: &[],
        fails_clean: None,
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
                shape: Default::default(),
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
                ..FaultConfig::default()
            };
        },
        env: &[("UNDERSTORY_SYNC__API__REQUEST_TIMEOUT_SECS", "1")],
        fails_clean: None,
    },
];

#[derive(Default)]
struct FaultRow {
    seeds: usize,
    converged: usize,
    /// The most runs a converged seed needed.
    most_runs: usize,
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

/// One fault, one seed: up to `RUNS` runs with the fault on. Converged: a run succeeded and the
/// database equals the truth. Failed clean: every run failed with one `error:` line and a
/// documented exit code, and what was stored is correct. Anything else is corrupted.
/// (A failed run prints one `error:` line per stream that failed.)
async fn fault_trial(case: &FaultCase, seed: u64, row: &mut FaultRow) {
    let mut sc = small();
    sc.seed = seed;
    (case.sandbox)(&mut sc);
    let sb = start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, &all_streams());
    let db = dir.path().join("sync.sqlite");
    let env: Vec<(&str, String)> = case.env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    row.seeds += 1;
    for attempt in 1..=RUNS {
        let out = run(&cfg, &env);
        match out.status.code() {
            Some(0) => {
                let all: Vec<&str> = understory_sync::streams::tables();
                if divergence(&db, &sb).is_clean() && integrity_ok(&db) && never_ran(&db, &all).is_empty() {
                    row.converged += 1;
                    row.most_runs = row.most_runs.max(attempt);
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
    row.notes
        .push(format!("seed {seed}: not converged after {RUNS} runs"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliability_fault_matrix_converges() {
    let n = if long() { 6 } else { 2 };
    let mut rows: Vec<FaultRow> = Vec::new();
    for (i, case) in FAULTS.iter().enumerate() {
        let mut row = FaultRow::default();
        for seed in seeds(2_000 + 100 * i as u64, n) {
            fault_trial(case, seed, &mut row).await;
        }
        rows.push(row);
    }
    let mut table = format!(
        "| fault | seeds | converged within {RUNS} runs | most runs needed | failed clean | corrupted |\n|---|---|---|---|---|---|\n"
    );
    for (case, row) in FAULTS.iter().zip(&rows) {
        writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} |",
            case.name, row.seeds, row.converged, row.most_runs, row.failed_clean, row.corrupted
        )
        .unwrap();
    }
    let meant: Vec<String> = FAULTS
        .iter()
        .filter_map(|c| c.fails_clean.map(|why| format!("- {}: {why}", c.name)))
        .collect();
    if !meant.is_empty() {
        writeln!(table, "\nMeant to fail clean:\n{}", meant.join("\n")).unwrap();
    }
    publish("fault-matrix", "Fault matrix", &table);
    let wrong: Vec<String> = FAULTS
        .iter()
        .zip(&rows)
        .filter(|(case, row)| {
            row.corrupted > 0
                || match case.fails_clean {
                    None => row.converged != row.seeds,
                    Some(_) => row.failed_clean != row.seeds,
                }
        })
        .map(|(case, row)| format!("{}: {:?}", case.name, row.notes))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
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
        says: "no-such.toml does not exist; copy the example config there and edit it (installed: /usr/share/doc/understory-sync/examples/understory-sync.toml",
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
            .then(|| understory_sync::test_support::lock::acquire(&setup.db).unwrap());
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
        &format!(
            "{}[metrics]\ntextfile = \"{}\"\n",
            all_streams(),
            metrics.display()
        ),
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
