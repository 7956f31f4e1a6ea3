//! Many accounts on one server (`cargo bench --bench accounts`): 50 Understory accounts, each an
//! instance of the template units (`understory-sync@NAME.timer` → `understory-sync@NAME.service`),
//! all due at the same quarter hour, run by the release binary on this one machine. Two rounds:
//! a first load into empty databases, then a steady run of every account after its sandbox has
//! moved on by one mutation step. Prints figures only (nothing is asserted but the exit codes).
//!
//! What each instance gets is what the units give it:
//! - its own company: one in-process sandbox per account (separate data, a separate request
//!   budget), each with its own seed, served by this process's runtime; the sandboxes' memory
//!   is this process's, never counted as the job's;
//! - its config written from `config/sandbox-job.toml` as an operator installs it for instance
//!   NAME, with only the sandbox's address and the database path changed (the database under a
//!   temporary root's `var/lib/understory-sync/NAME/`);
//! - its secret the way `LoadCredential=` passes it: a file `understory-client-secret` in
//!   `$CREDENTIALS_DIRECTORY`, and an environment as clean as a unit's;
//! - its start drawn as `RandomizedDelaySec=` draws it: every instance's timer elapses at the
//!   same calendar time, then waits a uniform random delay in `[0, RandomizedDelaySec)`, a new
//!   one at each elapse. The number is read from `systemd/understory-sync@.timer`, and the draws
//!   come from a fixed-seed xorshift, so runs are comparable. systemd is not PID 1 here: the
//!   benchmark schedules the starts itself.
//!
//! What the spread leaves out: `AccuracySec=`. systemd adds the random delay first, then lets
//! the elapse slip by up to the accuracy to a wake-up shared by every timer of the host. At
//! systemd's default of one minute, the delays of one quarter hour would collapse into at most
//! two bursts a minute apart; the shipped timers set `AccuracySec=1s`, so the draw stands.
//! `ACCOUNTS_BENCH_SPREAD_SECS=0` measures the worst case, every instance at once.
//!
//! Measured per round: the wall time from the first start to the last exit, each instance's
//! duration and exit code (all must be 0), the most instances running at once, the start
//! spread, the memory of all live instances together (their `VmRSS` summed every 20 ms, the
//! largest sum kept; the same for `RssAnon`, and for `Pss` every 200 ms: the binary's and the
//! libraries' pages, shared by every instance, count once in `Pss` and once per instance in the
//! `VmRSS` sum), each instance's `VmHWM` (the kernel's high-water mark, read while it lives, so
//! short of at most its last 20 ms; `wait4`'s `ru_maxrss` would be exact, but rustix has no
//! `wait4` and libc is no dependency), and CPU: each instance's as the kernel adds it to this
//! process's children's when it is reaped, the sandboxes' and the monitor's beside it.
//!
//! `ACCOUNTS_BENCH_N` (50) accounts of `ACCOUNTS_BENCH_BOOKINGS` (2,000) bookings and as many
//! orders; `ACCOUNTS_BENCH_SPREAD_SECS` replaces the timer's `RandomizedDelaySec` for quick runs.
//! The binary is the one `cargo bench` builds (`target/release/understory-sync`): the release
//! code plus the test hooks, which read an unset variable once per run or stream.

#[path = "accounts/install.rs"]
mod install;
#[path = "accounts/procfs.rs"]
mod procfs;
#[path = "accounts/report.rs"]
mod report;
#[path = "accounts/schedule.rs"]
mod schedule;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use understory_sandbox::{Sandbox, SandboxConfig};
use understory_sync::store::RunRow;

use install::{Account, install};
use procfs::{Mem, children_cpu, mem, own_cpu, pss, thread_cpu};
use schedule::Schedule;

/// The release binary `cargo bench` builds beside this benchmark (`target/release/`).
const BIN: &str = env!("CARGO_BIN_EXE_understory-sync");
/// How often the live instances' memory is read: often enough to catch a peak that lasts a
/// page's write, rare enough that reading fifty `/proc` files stays a few percent of a core.
const SAMPLE: Duration = Duration::from_millis(20);
/// `Pss` walks each process's mappings (~150 µs a read, against ~20 µs for `status`), so it is
/// read every tenth sample only.
const PSS_EVERY: u32 = 10;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn repo(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
}

/// An instance while it runs.
struct Live {
    account: usize,
    child: Child,
    start: Duration,
    last: Mem,
}

/// What one instance did in a round; `run` is its database's newest `sync_runs` row.
struct Instance {
    start: Duration,
    end: Duration,
    exit: Option<i32>,
    hwm_kib: u64,
    cpu: f64,
    run: Option<RunRow>,
}

/// The largest sums over the live instances, KiB, and the most of them at once.
#[derive(Default)]
struct Peaks {
    rss: u64,
    anon: u64,
    pss: u64,
    running: usize,
    samples: u32,
}

impl Peaks {
    fn sample(&mut self, live: &mut [Live]) {
        self.samples += 1;
        let with_pss = self.samples.is_multiple_of(PSS_EVERY);
        let (mut rss, mut anon, mut pss_sum) = (0, 0, 0);
        for l in live.iter_mut() {
            if let Some(m) = mem(l.child.id()) {
                l.last = m;
            }
            rss += l.last.rss;
            anon += l.last.anon;
            if with_pss {
                pss_sum += pss(l.child.id()).unwrap_or(0);
            }
        }
        self.rss = self.rss.max(rss);
        self.anon = self.anon.max(anon);
        self.pss = self.pss.max(pss_sum);
    }
}

/// Reaps the instances that have exited, one at a time, so the growth of the children's CPU
/// across each is that instance's own.
fn reap(live: &mut Vec<Live>, done: &mut [Option<Instance>], now: Duration) {
    let mut before = children_cpu();
    let mut k = 0;
    while k < live.len() {
        let Some(status) = live[k].child.try_wait().expect("wait") else {
            k += 1;
            continue;
        };
        let l = live.swap_remove(k);
        let after = children_cpu();
        done[l.account] = Some(Instance {
            start: l.start,
            end: now,
            exit: status.code(),
            hwm_kib: l.last.hwm,
            cpu: after - before,
            run: None,
        });
        before = after;
    }
}

/// A round's figures.
struct Round {
    instances: Vec<Instance>,
    peaks: Peaks,
    sandbox_cpu: f64,
    monitor_cpu: f64,
}

/// Starts every account at its drawn offset from now (the calendar time every timer shares),
/// samples the live instances until the last exits, then reads each database's newest run.
fn round(accounts: &[Account], delays: &[Duration], number: usize) -> Round {
    let mut due: Vec<usize> = (0..accounts.len()).collect();
    due.sort_by_key(|&i| std::cmp::Reverse(delays[i]));
    let mut live: Vec<Live> = Vec::new();
    let mut done: Vec<Option<Instance>> = accounts.iter().map(|_| None).collect();
    let mut peaks = Peaks::default();
    let (own0, thread0) = (own_cpu(), thread_cpu());
    let t0 = Instant::now();
    let mut next_sample = Duration::ZERO;
    while !(due.is_empty() && live.is_empty()) {
        while let Some(&i) = due.last().filter(|&&i| delays[i] <= t0.elapsed()) {
            due.pop();
            let start = t0.elapsed();
            let child = accounts[i].start(number);
            live.push(Live {
                account: i,
                child,
                start,
                last: Mem::default(),
            });
        }
        peaks.running = peaks.running.max(live.len());
        reap(&mut live, &mut done, t0.elapsed());
        if t0.elapsed() >= next_sample {
            peaks.sample(&mut live);
            next_sample += SAMPLE;
        }
        let next_start = due.last().map_or(Duration::MAX, |&i| delays[i]);
        std::thread::sleep(next_sample.min(next_start).saturating_sub(t0.elapsed()));
    }
    let monitor_cpu = thread_cpu() - thread0;
    let sandbox_cpu = own_cpu() - own0 - monitor_cpu;
    let instances = done
        .into_iter()
        .zip(accounts)
        .map(|(d, a)| {
            let mut inst = d.expect("every instance ran");
            // None when it failed before recording a run; its exit code says so.
            inst.run = understory_sync::store::status(&a.database, 1, &[])
                .ok()
                .and_then(|s| s.runs.into_iter().next());
            inst
        })
        .collect();
    Round {
        instances,
        peaks,
        sandbox_cpu,
        monitor_cpu,
    }
}

fn main() {
    let n: usize = env_or("ACCOUNTS_BENCH_N", 50);
    let bookings: u32 = env_or("ACCOUNTS_BENCH_BOOKINGS", 2_000);
    let mut schedule = Schedule::read(
        &repo("systemd/understory-sync@.timer"),
        std::env::var("ACCOUNTS_BENCH_SPREAD_SECS")
            .ok()
            .and_then(|s| s.parse().ok()),
    );
    let shipped = fs::read_to_string(repo("config/sandbox-job.toml")).expect("config/sandbox-job.toml");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pid1 = fs::read_to_string("/proc/1/comm").unwrap_or_default();
    // The machine is shared: what else ran when the figures were taken.
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();

    println!("accounts benchmark: {n} accounts of {bookings} bookings and orders, {cores} cores");
    println!("  binary   {BIN}");
    println!(
        "  load     {} (1, 5, 15 min) before the sandboxes start",
        load.join(" ")
    );
    schedule.describe();
    println!(
        "  systemd  not PID 1 here (PID 1 is {}): the benchmark schedules the starts itself and runs each \
         instance as its unit would (config, credential, clean environment), without a cgroup or MemoryMax=",
        pid1.trim()
    );
    println!(
        "  sandbox  one per account, in this process (its memory is not the instances'), seeds 1001..={}",
        1000 + n
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let root = tempfile::tempdir().expect("tempdir");
    let accounts: Vec<Account> = (1..=n)
        .map(|k| {
            let seed = 1000 + k as u64;
            let mut sc = SandboxConfig {
                seed,
                ..SandboxConfig::default()
            };
            sc.data.bookings = bookings;
            sc.data.consents = bookings / 4;
            let sandbox = rt
                .block_on(Sandbox::start(sc, SocketAddr::from(([127, 0, 0, 1], 0))))
                .expect("sandbox");
            install(root.path(), &format!("account-{k:02}"), seed, sandbox, &shipped)
        })
        .collect();

    let mut failed = false;
    for (number, title) in [
        (1, "round 1: first load (empty databases)"),
        (
            2,
            "round 2: steady run (every account again, after one mutation step of its sandbox)",
        ),
    ] {
        if number == 2 {
            for a in &accounts {
                a.sandbox.mutate(1);
            }
        }
        // A new draw at every elapse, as systemd draws one.
        let delays = schedule.draw(accounts.len());
        let r = round(&accounts, &delays, number);
        report::report(title, &accounts, &r, cores);
        for (a, i) in accounts.iter().zip(&r.instances) {
            if i.exit != Some(0) {
                failed = true;
                let text = fs::read_to_string(a.log(number)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                eprintln!("{} exited {:?}; its log ends:", a.name, i.exit);
                for line in tail.into_iter().rev() {
                    eprintln!("    {line}");
                }
            }
        }
    }
    if failed {
        eprintln!("accounts benchmark: an instance did not exit 0");
        std::process::exit(1);
    }
}
