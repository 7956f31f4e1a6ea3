//! The webhook path as operators run it: `webhooks register|list|unregister` and `run` as
//! processes, the sandbox sending signed deliveries with its retries, a SIGKILL in the middle.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use understory_sandbox::{Sandbox, SandboxConfig};
use understory_sync::auth::token_vault::{Key, KeyFrom};

use crate::cli::{BIN, write_config};
use crate::support;

/// A config for the binary with `[webhooks]` on a free loopback port and a key outside the
/// state directory; `schedule` for `run`.
pub(crate) struct Hooked {
    pub(crate) sb: Sandbox,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) cfg: PathBuf,
    pub(crate) db: PathBuf,
    key: PathBuf,
    pub(crate) url: String,
}

pub(crate) async fn hooked(sc: SandboxConfig, streams: &str) -> Hooked {
    let sb = support::start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra = format!(
        "{streams}\n[webhooks]\nlisten = \"127.0.0.1:{port}\"\nkey_file = \"{}\"\n[metrics]\ntextfile = \"state/metrics.prom\"\n",
        keys.join("webhooks.key").display()
    );
    let cfg = write_config(dir.path(), &sb, &extra);
    // `run` needs a schedule: one that never fires during a test.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "database = \"sync.sqlite\"",
        "database = \"state/sync.sqlite\"\nschedule = \"0 0 1 1 *\"",
    );
    std::fs::write(&cfg, text).unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let db = dir.path().join("state/sync.sqlite");
    Hooked {
        sb,
        key: keys.join("webhooks.key"),
        cfg,
        db,
        dir,
        url: format!("http://127.0.0.1:{port}/webhooks"),
    }
}

pub(crate) fn cmd(cfg: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .arg("--config")
        .arg(cfg)
        .env("UNDERSTORY_CLIENT_SECRET", "sandbox-secret")
        .env_remove("RUST_LOG");
    c
}

pub(crate) fn ok(c: &mut Command) -> (String, String) {
    let out = c.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The secrets the receiver holds, opened with the key: what must never show anywhere else.
fn stored_secrets(h: &Hooked) -> Vec<String> {
    let key = Key::load(&h.key, KeyFrom::File).unwrap();
    let text = std::fs::read_to_string(h.db.with_extension("sqlite.webhook-secrets")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    file["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let aad = format!(
                "understory-sync webhook secrets v1\n{}\n{}",
                e["id"].as_str().unwrap(),
                e["url"].as_str().unwrap()
            );
            let plain = key
                .open(
                    e["nonce"].as_str().unwrap(),
                    e["ciphertext"].as_str().unwrap(),
                    aad.as_bytes(),
                )
                .unwrap();
            String::from_utf8(plain).unwrap()
        })
        .collect()
}

/// A `run` process, killed when dropped: a test that fails midway must not leave it running
/// (it would hold whatever its parent held, a build lock among them).
pub(crate) struct Running(Child);

impl Running {
    pub(crate) fn id(&self) -> u32 {
        self.0.id()
    }
    pub(crate) fn kill(&mut self) -> std::io::Result<()> {
        self.0.kill()
    }
    pub(crate) fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn spawn_run(h: &Hooked, log: &Path) -> Running {
    let log = std::fs::File::create(log).unwrap();
    Running(
        cmd(&h.cfg, &["run"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// Waits until `run` answers on the receiver's socket.
pub(crate) async fn listening(url: &str) {
    for _ in 0..200 {
        if support::http().get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run never listened on {url}");
}

pub(crate) fn stored_raw(db: &Path, id: &str) -> Option<serde_json::Value> {
    support::open(db)
        .query_row("SELECT raw_json FROM bookings WHERE id = ?1", [id], |r| {
            r.get::<_, String>(0)
        })
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap())
}

pub(crate) fn api_booking(sb: &Sandbox, id: &str) -> serde_json::Value {
    sb.truth().rows("bookings")[&(String::new(), id.to_owned())].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_keeps_the_secret_sealed_and_one_subscription_per_url() {
    let h = hooked(support::small(), "").await;
    let (id, stderr) = ok(&mut cmd(&h.cfg, &["webhooks", "register", "--url", &h.url]));
    let id = id.trim().to_owned();
    assert!(!id.is_empty() && !id.contains('\n'), "{id}");
    assert!(stderr.contains("created a new key"), "{stderr}");
    let (again, _) = ok(&mut cmd(&h.cfg, &["webhooks", "register", "--url", &h.url]));
    assert_eq!(
        again.trim(),
        id,
        "registering again updates the same subscription"
    );
    let (list, _) = ok(&mut cmd(&h.cfg, &["webhooks", "list"]));
    let ours: Vec<&str> = list.lines().filter(|l| l.contains(&h.url)).collect();
    assert_eq!(ours.len(), 1, "{list}");
    assert!(
        ours[0].starts_with(&id) && ours[0].ends_with("secret stored here"),
        "{list}"
    );
    let secrets = stored_secrets(&h);
    assert_eq!(secrets.len(), 1);
    assert!(secrets[0].starts_with("whsec_"));
    // A sync and a run later, the secret is in none of the files the job writes.
    ok(&mut cmd(&h.cfg, &["sync"]));
    let mut run = spawn_run(&h, &h.dir.path().join("run.log"));
    listening(&h.url).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = Command::new("kill").arg(run.id().to_string()).status();
    run.wait().unwrap();
    let bare = secrets[0].trim_start_matches("whsec_");
    for file in [
        "state/sync.sqlite",
        "state/sync.sqlite-wal",
        "state/metrics.prom",
        "state/metrics-webhooks.prom",
        "run.log",
        "understory-sync.toml",
    ] {
        let bytes = std::fs::read(h.dir.path().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(bare), "the secret is in {file}");
    }
    assert!(!list.contains(bare) && !stderr.contains(bare));
    // A plain-http URL off loopback is refused; unregister deletes it and forgets the secret.
    let out = cmd(
        &h.cfg,
        &[
            "webhooks",
            "register",
            "--url",
            "http://hooks.example.org/webhooks",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain http"));
    ok(&mut cmd(&h.cfg, &["webhooks", "unregister"]));
    let (list, _) = ok(&mut cmd(&h.cfg, &["webhooks", "list"]));
    assert!(!list.contains(&h.url), "{list}");
    assert!(stored_secrets(&h).is_empty());
}

/// Each delivery is one inbox row whatever the retries (the unique `webhook-id`), and each is
/// applied once: its item and its mark are one transaction (`store::Delivered`), which a kill
/// lands whole or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_run_loses_no_delivery_and_records_each_once() {
    let mut sc = support::small();
    sc.webhooks.retry_schedule_ms = vec![300, 600, 1_000, 1_000, 2_000, 3_000, 5_000];
    let h = hooked(sc, "bookings = true").await;
    ok(&mut cmd(&h.cfg, &["webhooks", "register", "--url", &h.url]));
    ok(&mut cmd(&h.cfg, &["sync"]));
    let log = h.dir.path().join("run.log");
    let mut run = spawn_run(&h, &log);
    listening(&h.url).await;
    // Fresh within seconds: one touched booking is stored before the next is touched.
    let first = h.sb.touch_booking();
    let started = Instant::now();
    while stored_raw(&h.db, &first) != Some(api_booking(&h.sb, &first)) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the touched booking never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Touches keep coming while `run` is killed mid-flight and restarted.
    let mut touched = vec![first];
    for round in 0..3 {
        for _ in 0..10 {
            touched.push(h.sb.touch_booking());
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        run.kill().unwrap();
        run.wait().unwrap();
        for _ in 0..5 {
            touched.push(h.sb.touch_booking());
        }
        tokio::time::sleep(Duration::from_millis(200 * round)).await;
        run = spawn_run(&h, &log);
        listening(&h.url).await;
    }
    // Every delivery settles (delivered, or retried until it was), and every touched booking
    // is stored as the API has it.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let log = h.sb.webhook_log();
        let done = log.iter().all(|d| d.settled());
        let current = touched
            .iter()
            .all(|id| stored_raw(&h.db, id) == Some(api_booking(&h.sb, id)));
        if done && current {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {} deliveries pending",
            log.iter().filter(|d| !d.settled()).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = h.sb.webhook_log();
    assert!(log.iter().all(|d| d.given_up == 0), "a delivery was given up");
    let c = support::open(&h.db);
    let (rows, distinct, waiting): (i64, i64, i64) = c
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT webhook_id), SUM(applied_at IS NULL) FROM webhook_inbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        rows as usize,
        log.len(),
        "one inbox row per event, however often it was sent"
    );
    assert_eq!(rows, distinct);
    assert_eq!(waiting, 0);
    let retried = log.iter().filter(|d| d.attempts.len() > 1).count();
    assert!(
        retried > 0,
        "the kills left some deliveries to the sender's retries"
    );
    let _ = Command::new("kill").arg(run.id().to_string()).status();
    run.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_the_sender_dropped_are_found_and_counted_by_the_next_listing() {
    let mut sc = support::small();
    sc.webhooks.drop_share = 0.3;
    let h = hooked(sc, "bookings = true").await;
    ok(&mut cmd(&h.cfg, &["webhooks", "register", "--url", &h.url]));
    ok(&mut cmd(&h.cfg, &["sync"]));
    // `run` lists every two seconds beside its receiver (only its own listings count misses).
    let text = std::fs::read_to_string(&h.cfg)
        .unwrap()
        .replace("schedule = \"0 0 1 1 *\"", "schedule = \"*/2 * * * * *\"");
    std::fs::write(&h.cfg, text).unwrap();
    let log = h.dir.path().join("run.log");
    let mut run = spawn_run(&h, &log);
    listening(&h.url).await;
    // Once a listing that watches has finished, the changes come all at once, between two
    // listings.
    let runs = |db: &Path| -> Vec<(i64, String, Option<i64>)> {
        support::open(db)
            .prepare("SELECT id, status, webhook_missed FROM sync_runs ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let last = loop {
        let all = runs(&h.db);
        if let Some((id, status, Some(_))) = all.last()
            && status == "succeeded"
        {
            break *id;
        }
        assert!(Instant::now() < deadline, "no listing watched: {all:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let touched: Vec<String> = (0..30).map(|_| h.sb.touch_booking()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let later: Vec<_> = runs(&h.db).into_iter().filter(|r| r.0 > last).collect();
        if later.len() >= 2 && later.iter().all(|r| r.1 == "succeeded") {
            break later;
        }
        assert!(
            Instant::now() < deadline,
            "no two listings after the changes: {later:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = h.sb.webhook_log();
    assert!(log.iter().all(|d| d.settled()));
    let brought = |id: &String| log.iter().any(|d| &d.item_id == id && !d.dropped);
    let mut dropped: Vec<&String> = touched.iter().filter(|id| !brought(id)).collect();
    dropped.sort();
    dropped.dedup();
    assert!(!dropped.is_empty(), "the switch dropped some deliveries");
    assert!(dropped.len() < touched.len(), "and delivered others");
    // The listings bring exactly those, and say so.
    let missed: i64 = after.iter().map(|r| r.2.unwrap_or(0)).sum();
    assert_eq!(missed, dropped.len() as i64, "{after:?}");
    for id in &touched {
        assert_eq!(
            stored_raw(&h.db, id),
            Some(api_booking(&h.sb, id)),
            "booking {id}"
        );
    }
    let _ = Command::new("kill").arg(run.id().to_string()).status();
    run.wait().unwrap();
    let (status, _) = ok(&mut cmd(&h.cfg, &["status"]));
    assert!(status.contains("changes no delivery had brought"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_runs_two_secrets_side_by_side_and_an_unregistered_one_stops_working() {
    let h = hooked(support::small(), "bookings = true").await;
    let (old, _) = ok(&mut cmd(&h.cfg, &["webhooks", "register", "--url", &h.url]));
    ok(&mut cmd(&h.cfg, &["sync"]));
    let log = h.dir.path().join("run.log");
    let _run = spawn_run(&h, &log);
    listening(&h.url).await;
    // The second URL reaches the same receiver; `register` while `run` runs.
    let rotated = format!("{}?v=2", h.url);
    let (new, _) = ok(&mut cmd(&h.cfg, &["webhooks", "register", "--url", &rotated]));
    let (old, new) = (old.trim().to_owned(), new.trim().to_owned());
    assert_ne!(old, new, "a second subscription");
    let secrets = stored_secrets(&h);
    assert_eq!(secrets.len(), 2);
    let id = h.sb.truth().rows("bookings").keys().next().unwrap().1.clone();
    let send = |secret: String, webhook_id: &'static str| {
        let (url, id) = (h.url.clone(), id.clone());
        async move {
            let body = crate::webhooks::event(webhook_id, "v1.booking.updated", "booking_id", &id);
            let now = chrono::Utc::now().timestamp();
            support::http()
                .post(&url)
                .header("webhook-id", webhook_id)
                .header("webhook-timestamp", now.to_string())
                .header(
                    "webhook-signature",
                    crate::webhooks::sign(&secret, webhook_id, now, &body),
                )
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Within the receiver's reload time (10 s), both are accepted.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = send(secrets[0].clone(), "r-old").await;
        let b = send(secrets[1].clone(), "r-new").await;
        if a == 204 && b == 204 {
            break;
        }
        assert!(Instant::now() < deadline, "old {a}, new {b}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The old one unregistered: refused within the reload time, the new one still taken.
    ok(&mut cmd(&h.cfg, &["webhooks", "unregister", "--id", &old]));
    let old_secret = secrets
        .iter()
        .find(|s| !stored_secrets(&h).contains(s))
        .unwrap()
        .clone();
    let deadline = Instant::now() + Duration::from_secs(15);
    while send(old_secret.clone(), "r-old-2").await != 401 {
        assert!(
            Instant::now() < deadline,
            "the unregistered secret is still accepted"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(send(stored_secrets(&h)[0].clone(), "r-new-2").await, 204);
    let (list, _) = ok(&mut cmd(&h.cfg, &["webhooks", "list"]));
    assert!(list.contains(&new) && !list.contains(&old), "{list}");
}
