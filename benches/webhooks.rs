//! Fresh in seconds (`cargo bench --bench webhooks`): the sandbox changes bookings, events and
//! experiences at a steady rate while the release binary's `run` serves the webhook receiver;
//! measured from the sandbox emitting each event to its item committed in SQLite (the inbox's
//! `applied_at`, written in the transaction right after the item's), and the API requests spent
//! per change, against a timer-driven listing sync (`sync`) doing the same work: the same number
//! of changes, then one listing. Prints figures only.
//!
//! `WEBHOOK_BENCH_RATE` changes per second (20), `WEBHOOK_BENCH_SECS` seconds (60),
//! `WEBHOOK_BENCH_BOOKINGS` bookings in the account (5,000). Everything on loopback: the
//! figures are the job's own delay, not the Internet's.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use understory_sandbox::world::Kind;
use understory_sandbox::{Sandbox, SandboxConfig};

const BIN: &str = env!("CARGO_BIN_EXE_understory-sync");

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn job(cfg: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .arg("--config")
        .arg(cfg)
        .env("UNDERSTORY_CLIENT_SECRET", "sandbox-secret")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    c
}

fn ok(c: &mut Command) {
    let status = c.status().expect("the binary runs");
    assert!(status.success(), "{c:?}: {status}");
}

/// The `p`-th percentile of sorted `xs`.
fn percentile(xs: &[f64], p: f64) -> f64 {
    let i = ((xs.len() as f64 - 1.0) * p).round() as usize;
    xs[i.min(xs.len() - 1)]
}

/// One change of each kind in turn, mostly bookings (the busiest list).
fn change(sb: &Sandbox, n: u64) {
    let kind = match n % 10 {
        8 => Kind::Event,
        9 => Kind::Experience,
        _ => Kind::Booking,
    };
    sb.touch(kind).expect("the world has one of each");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rate = env_or("WEBHOOK_BENCH_RATE", 20).max(1);
    let secs = env_or("WEBHOOK_BENCH_SECS", 60).max(1);
    let mut sc = SandboxConfig::default();
    sc.data.bookings = env_or("WEBHOOK_BENCH_BOOKINGS", 5_000) as u32;
    let sb = Sandbox::start(sc, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.path().join("job.toml");
    // The streams with webhook events, and a booking's tickets (fetched with it, as a listing
    // fetches them); the API's defaults for the pace.
    std::fs::write(
        &cfg,
        format!(
            r#"database = "state/u.sqlite"
schedule = "0 0 1 1 *"
[auth]
token_url = "{token}"
client_id = "sandbox-client"
[api]
base_url = "{base}"
[streams]
bookings = true
booking_tickets = true
information_request_answers = false
orders = false
order_line_items = false
order_transactions = false
order_refunds = false
marketing_consents = false
events = true
experiences = true
[webhooks]
listen = "127.0.0.1:{port}"
key_file = "keys/webhooks.key"
"#,
            token = sb.token_url(),
            base = sb.base_url()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let url = format!("http://127.0.0.1:{port}/webhooks");
    let started = Instant::now();
    ok(&mut job(&cfg, &["sync"]));
    eprintln!("first load: {:.0} s", started.elapsed().as_secs_f64());
    ok(job(&cfg, &["webhooks", "register", "--url", &url]).stderr(Stdio::null()));
    let mut run = job(&cfg, &["run"]).spawn().unwrap();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The webhook path: `rate` changes a second for `secs` seconds.
    let before = sb.requests();
    let changes = rate * secs;
    let every = Duration::from_micros(1_000_000 / rate);
    let t0 = Instant::now();
    for n in 0..changes {
        change(&sb, n);
        let due = t0 + every * (n as u32 + 1);
        tokio::time::sleep_until(due.into()).await;
    }
    let db = dir.path().join("state/u.sqlite");
    #[allow(clippy::disallowed_methods)] // read as an outsider would: no migrations, no pragmas
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let waiting: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM webhook_inbox WHERE applied_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let log = sb.webhook_log();
        if waiting == 0 && log.iter().all(|d| d.settled()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries did not settle in two minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let webhook_requests = sb.requests() - before;
    let _ = Command::new("kill").arg(run.id().to_string()).status();
    run.wait().unwrap();

    let mut lags: Vec<f64> = Vec::new();
    let log = sb.webhook_log();
    for d in &log {
        let applied: Option<String> = conn
            .query_row(
                "SELECT applied_at FROM webhook_inbox WHERE webhook_id = ?1",
                [&d.webhook_id],
                |r| r.get(0),
            )
            .ok()
            .flatten();
        let applied = applied.expect("every delivery is in the inbox, applied");
        let applied: SystemTime = chrono::DateTime::parse_from_rfc3339(&applied).unwrap().into();
        lags.push(
            applied
                .duration_since(d.emitted_at)
                .unwrap_or_default()
                .as_secs_f64()
                * 1000.0,
        );
    }
    lags.sort_by(f64::total_cmp);
    let retried = log.iter().filter(|d| d.attempts.len() > 1).count();

    // The listing path: the same number of changes, then one scheduled sync.
    for n in 0..changes {
        change(&sb, n);
    }
    let before = sb.requests();
    ok(&mut job(&cfg, &["sync"]));
    let listing_requests = sb.requests() - before;
    // What a tick costs with nothing changed: the listing's floor, paid every tick.
    let before = sb.requests();
    ok(&mut job(&cfg, &["sync"]));
    let idle_requests = sb.requests() - before;

    println!(
        "webhooks, {changes} changes at {rate}/s over {secs} s (bookings 80 %, events 10 %, experiences 10 %), loopback:"
    );
    println!(
        "  event emitted → item committed: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} deliveries, {retried} retried)",
        percentile(&lags, 0.5),
        percentile(&lags, 0.9),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or_default(),
        lags.len()
    );
    println!(
        "  requests per change: webhooks {:.2} ({webhook_requests} requests); one listing sync after the same changes {:.2} ({listing_requests} requests)",
        webhook_requests as f64 / changes as f64,
        listing_requests as f64 / changes as f64
    );
    println!(
        "  a listing sync with nothing changed: {idle_requests} requests (paid every timer tick; webhooks pay nothing when nothing changes)"
    );
}
