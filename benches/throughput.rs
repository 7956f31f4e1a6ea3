//! Throughput, the whole picture in one run (`cargo bench --bench throughput`): end-to-end rows/s
//! and the sync's CPU per row for 100k and 1M bookings (medians of three full runs on fresh
//! databases), the store's ceiling measured in the same run (the same rows, already parsed,
//! written straight through `store`), orders with their sub-resources in requests/s, peak RSS,
//! a run after a 1 % mutation and a run with nothing changed.
//!
//! The sandbox runs as its own process (the release binary), so the CPU figures of this process
//! are the sync's alone. Only bookings are synced for the row figures; the client pace is opened
//! wide and the sandbox's budget is off, so the figures are the job's own cost.
//! `THROUGHPUT_SIZES=100000` picks the sizes (comma-separated); `THROUGHPUT_RUNS` the runs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;
use understory_sync::test_support::config::RawStreamsExt as _;
use understory_sync::test_support::store::StoreExt as _;

use secrecy::SecretString;
use serde_json::value::RawValue;
use understory_sync::config::RawStreams;
use understory_sync::config::{self, Config, RawConfig};
use understory_sync::shutdown::Stop;
use understory_sync::store::Store;
use understory_sync::sync;
use understory_sync::test_support;
use understory_sync::test_support::store::Commit;
use understory_sync::test_support::streams::{self, At};

/// CPU seconds (user + system) of a process, from `/proc/<pid>/stat`.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// One more full run, by the CLI binary in its own process (a fresh database), sampling its
/// resident memory every 20 ms: its peak, MiB. The in-process runs cannot say, as this process
/// also holds the store-ceiling rows.
fn cli_peak_rss_mib(sb: &SandboxProcess, dir: &Path, n: u32) -> f64 {
    let base = sb.base.trim_end_matches('/');
    let cfg = dir.join(format!("cli-{n}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "database = \"cli-{n}.sqlite\"\n[auth]\ntoken_url = \"{base}/oauth2/token\"\n\
             client_id = \"sandbox-client\"\nclient_secret = \"sandbox-secret\"\n\
             [api]\nbase_url = \"{base}/\"\nrequests_per_second = 1000000\n\
             max_requests_per_second = 1000000\nburst = 10000\nmax_concurrent = 16\n\
             [streams]\norders = false\nmarketing_consents = false\n\
             events = false\nexperiences = false\n"
        ),
    )
    .expect("cli config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_understory-sync"))
        .args(["sync", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sync binary starts");
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0.0_f64;
    while child.try_wait().expect("wait").is_none() {
        let kb = std::fs::read_to_string(&status)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        peak_kb = peak_kb.max(kb);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    peak_kb / 1024.0
}

/// Writes every dirty page out (`sync`) so a measurement does not pay for the previous one's
/// writeback: three databases of 1.7 GB each exceed the kernel's dirty limit (20 % of memory)
/// and throttled the store ceiling that followed them to a third of its speed.
fn settle() {
    let _ = Command::new("sync").status();
}

/// Deletes a run's database and its companions: only the last run's is read again.
fn remove_database(db: &Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct SandboxProcess {
    child: Child,
    base: String,
}

impl SandboxProcess {
    fn start(dir: &Path, bookings: u32) -> Self {
        let cfg = dir.join(format!("sandbox-{bookings}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[data]\nbookings = {bookings}\nconsents = 1000\nevents = 500\n\
                 [rate_limit]\nrequests_per_window = 4000000000\nmax_concurrent = 256\n\
                 [mutate]\nnew_share = 0.005\nupdate_share = 0.005\n"
            ),
        )
        .expect("sandbox config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_understory-sync"))
            .args(["sandbox", "--port", "0", "--config"])
            .arg(&cfg)
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sandbox binary starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let base = lines
            .find_map(|l| {
                l.ok()?
                    .strip_prefix("sandbox: serving Understory's API and token endpoint on ")
                    .map(str::to_owned)
            })
            .expect("the sandbox says where it serves");
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, base }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    async fn mutate(&self, cfg: &Config) {
        understory_sync::http::build(&cfg.api)
            .expect("client")
            .post(format!(
                "{}/_sandbox/mutate?steps=1",
                self.base.trim_end_matches('/')
            ))
            .send()
            .await
            .expect("mutate");
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn job(sb: &SandboxProcess, db: &Path, only: &[&str]) -> Config {
    let base = sb.base.trim_end_matches('/');
    let mut raw = RawConfig {
        database: db.to_owned(),
        ..RawConfig::default()
    };
    raw.auth.token_url = format!("{base}/oauth2/token");
    raw.auth.client_id = Some("sandbox-client".into());
    raw.auth.client_secret = Some(SecretString::from("sandbox-secret".to_owned()));
    raw.api.base_url = format!("{base}/");
    raw.api.requests_per_second = 1_000_000;
    raw.api.max_requests_per_second = 1_000_000;
    raw.api.burst = 10_000;
    raw.api.max_concurrent = 16;
    raw.retry.rate_limited_wait_secs = 1;
    raw.streams = RawStreams::only(only);
    config::validate(raw, &config::Environment::default(), None).expect("config")
}

/// One run: (seconds, sync CPU seconds, sandbox CPU seconds, rows, requests).
async fn run(cfg: &Config, sb: &SandboxProcess) -> (f64, f64, f64, u64, u64) {
    let (me0, sb0) = (cpu_secs("self"), cpu_secs(&sb.pid()));
    let t = Instant::now();
    let report = test_support::sync::run(cfg, Stop::never()).await.expect("sync");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(report.status, sync::RunStatus::Succeeded, "{report:?}");
    let total = report.total();
    let rows = total.inserted + total.updated + total.unchanged;
    let requests = report.streams.iter().map(|s| s.counts.requests).sum();
    (
        secs,
        cpu_secs("self") - me0,
        cpu_secs(&sb.pid()) - sb0,
        rows,
        requests,
    )
}

/// The store alone: the bookings of `synced`, parsed once, upserted into a fresh database in
/// pages of 100 with their checkpoints, grouped as the writer groups them, the secondary
/// indexes set aside and rebuilt as a first load does. Rows per second.
fn store_ceiling(synced: &Path, dir: &Path) -> f64 {
    let stream = streams::by_name("bookings").expect("bookings");
    #[allow(clippy::disallowed_methods)] // reading the bench's own database back
    let conn = rusqlite::Connection::open(synced).expect("open");
    let raws: Vec<Box<RawValue>> = conn
        .prepare("SELECT raw_json FROM bookings ORDER BY created_at")
        .expect("prepare")
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .map(|r| RawValue::from_string(r.expect("row")).expect("json"))
        .collect();
    let page = |chunk: &[Box<RawValue>]| Commit {
        stream: "bookings",
        rows: chunk
            .iter()
            .map(|r| stream.read(At::TOP, r).expect("readable").row)
            .collect(),
        checkpoint: Some(Default::default()),
        ..Commit::default()
    };
    let store = Store::open(&dir.join("ceiling.sqlite")).expect("store");
    // As a first load does: the key and secondary indexes aside, rebuilt at the end (timed,
    // both).
    let t = Instant::now();
    store
        .defer_indexes("bookings", true, chrono::Utc::now())
        .expect("defer");
    let mut writing = t.elapsed();
    // Parsed a group at a time (untimed), written as the writer writes a group (timed).
    for group in raws.chunks(5_000) {
        let commits: Vec<Commit> = group.chunks(100).map(page).collect();
        let t = Instant::now();
        store.commit_group(&commits, chrono::Utc::now()).expect("commit");
        writing += t.elapsed();
    }
    let t = Instant::now();
    store.restore_indexes("bookings").expect("restore");
    let building = t.elapsed();
    println!(
        "  store ceiling's parts   rows written in {:.2} s, indexes built in {:.2} s",
        writing.as_secs_f64(),
        building.as_secs_f64()
    );
    raws.len() as f64 / (writing + building).as_secs_f64()
}

#[tokio::main]
async fn main() {
    let sizes: Vec<u32> = std::env::var("THROUGHPUT_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runs: usize = std::env::var("THROUGHPUT_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().expect("tempdir");
    println!("throughput benchmark: bookings only, sandbox in its own process, medians of {runs} runs");
    for n in sizes {
        let sb = SandboxProcess::start(dir.path(), n);
        let mut full = Vec::new();
        let mut db = dir.path().join("none");
        for k in 0..runs {
            remove_database(&db);
            settle();
            db = dir.path().join(format!("bench-{n}-{k}.sqlite"));
            full.push(run(&job(&sb, &db, &["bookings"]), &sb).await);
        }
        let secs = median(full.iter().map(|r| r.0).collect());
        let cpu = median(full.iter().map(|r| r.1).collect());
        let sb_cpu = median(full.iter().map(|r| r.2).collect());
        let rows = full[0].3 as f64;
        let requests = full[0].4 as f64;
        let end_to_end = rows / secs;
        settle();
        let ceiling = store_ceiling(&db, dir.path());
        remove_database(&dir.path().join("ceiling.sqlite"));
        println!("{n} bookings");
        println!(
            "  full run             {secs:>7.2} s  {end_to_end:>8.0} rows/s  sync CPU {:>5.1} µs/row  sandbox CPU {:>5.1} µs/row  ({requests:.0} requests)",
            cpu / rows * 1e6,
            sb_cpu / rows * 1e6
        );
        println!(
            "  store ceiling                 {ceiling:>8.0} rows/s  (end to end is {:.0} % of it)",
            100.0 * end_to_end / ceiling
        );
        let cfg = job(&sb, &db, &["bookings"]);
        let (s, _, _, r, q) = run(&cfg, &sb).await;
        println!(
            "  nothing changed      {s:>7.2} s  {q} requests, {r} rows read ({:.2} % of the full run's requests)",
            100.0 * q as f64 / requests
        );
        sb.mutate(&cfg).await;
        let (s, _, _, r, q) = run(&cfg, &sb).await;
        println!(
            "  after a 1 % mutation {s:>7.2} s  {q} requests, {r} rows read ({:.1} % of the full run's requests, {:.1} % of its time)",
            100.0 * q as f64 / requests,
            100.0 * s / secs
        );
        println!(
            "  peak RSS of the sync {:>7.1} MiB (the CLI binary, one more full run)",
            cli_peak_rss_mib(&sb, dir.path(), n)
        );
        remove_database(&db);
        remove_database(&dir.path().join(format!("cli-{n}.sqlite")));
    }

    // Orders with their three sub-resource lists each: requests per second.
    let sb = SandboxProcess::start(dir.path(), 10_000);
    let db = dir.path().join("orders.sqlite");
    let cfg = job(
        &sb,
        &db,
        &[
            "orders",
            "order_line_items",
            "order_transactions",
            "order_refunds",
        ],
    );
    let (s, cpu, _, _, q) = run(&cfg, &sb).await;
    println!(
        "10000 orders with sub-resources: {s:.2} s, {q} requests, {:.0} requests/s, sync CPU {:.0} µs/request",
        q as f64 / s,
        cpu / q as f64 * 1e6
    );
}
