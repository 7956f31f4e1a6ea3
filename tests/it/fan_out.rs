//! Orders with short-lived cursors: the list walk stages each page and moves on, the fan-out
//! fetches line items, transactions and refunds behind it, and kills during the fan-out lose and
//! duplicate nothing.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use understory_sync::test_support::store::StoreExt as _;

use understory_sandbox::{Sandbox, SandboxConfig};
use understory_sync::sync::RunStatus;

use crate::cli::{sync_cmd, sync_ok, write_config};
use crate::support::*;

/// 2,000 orders whose cursors die after three seconds.
fn short_cursors() -> SandboxConfig {
    let mut sc = small();
    sc.data.bookings = 2_000;
    sc.cursor_ttl_secs = 3;
    sc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_second_cursor_survives_a_slow_fan_out_at_five_requests_per_second() {
    let sb = start(short_cursors()).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.streams.set("bookings", false);
    raw.streams.set("marketing_consents", false);
    raw.streams.set("events", false);
    raw.streams.set("experiences", false);
    // A first run's pace: five requests a second, growing only as answers stay clean. At that
    // pace one page's fan-out alone (300 requests) takes a minute, twenty cursor lifetimes.
    raw.api.requests_per_second = 5;
    raw.api.max_requests_per_second = 400;
    raw.api.burst = 1;
    raw.api.max_concurrent = 4;
    sb.record();
    let run = sync(&config(raw)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let orders = stream(&run, "orders");
    assert_eq!(orders.counts.cursor_restarts, 0, "{orders:?}");
    let refused = sb
        .arrivals()
        .iter()
        .filter(|a| a.path == "/v1/orders" && a.status == 400)
        .count();
    assert_eq!(refused, 0, "no cursor was refused");
    // Every order went through staging (the catch-up pass after the bootstrap re-lists a few).
    assert!(orders.counts.staged >= 2_000, "{orders:?}");
    let (got, truth) = (stored(&db), sb.truth());
    assert!(got.rows("orders") == truth.rows("orders"), "orders");
    assert!(
        got.rows("order_line_items") == truth.rows("order_line_items"),
        "line items"
    );
    assert!(
        got.rows("order_transactions") == truth.rows("order_transactions"),
        "transactions"
    );
    assert!(
        got.rows("order_refunds") == truth.rows("order_refunds"),
        "refunds"
    );
    let staged: i64 = open(&db)
        .query_row("SELECT COUNT(*) FROM staging", [], |r| r.get(0))
        .unwrap();
    assert_eq!(staged, 0, "the fan-out drained staging");
}

/// Parents of `stream` waiting in `staging`.
pub fn staged(db: &Path, stream: &str) -> i64 {
    open(db)
        .query_row("SELECT COUNT(*) FROM staging WHERE stream = ?1", [stream], |r| {
            r.get(0)
        })
        .unwrap_or(0)
}

/// Runs the job four times at `rps`, SIGKILLing each run a little later after `stream`'s
/// parents appear in `staging` (mutating the sandbox after every second kill); returns how many
/// kills landed while parents were staged, i.e. during the fan-out.
pub async fn kill_during_the_fan_out(sb: &Sandbox, cfg: &Path, db: &Path, stream: &str, rps: &str) -> usize {
    let mut kills_with_staged_parents = 0;
    for trial in 0..4u64 {
        let mut child = sync_cmd(cfg, "sandbox-secret")
            .env("UNDERSTORY_SYNC__API__REQUESTS_PER_SECOND", rps)
            .env("UNDERSTORY_SYNC__API__MAX_REQUESTS_PER_SECOND", rps)
            .env("UNDERSTORY_SYNC__API__BURST", "1")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until parents are staged (the walk is ahead of the fan-out), then a little more.
        let deadline = Instant::now() + Duration::from_secs(30);
        while staged(db, stream) == 0 && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(40 * trial)).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            if staged(db, stream) > 0 {
                kills_with_staged_parents += 1;
            }
        }
        child.wait().unwrap();
        if trial % 2 == 1 {
            sb.mutate(1);
        }
    }
    kills_with_staged_parents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_the_fan_out_loses_and_duplicates_nothing() {
    let sb = start(short_cursors()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "");
    let db = dir.path().join("sync.sqlite");
    let kills = kill_during_the_fan_out(&sb, &cfg, &db, "orders", "300").await;
    assert!(kills >= 2, "kills landed during the fan-out: {kills}");
    sync_ok(&cfg);
    assert_converged(&db, &sb);
    assert_eq!(staged(&db, "orders"), 0);
    // Every order has its line items: none is visible without them.
    let bare: i64 = open(&db)
        .query_row(
            "SELECT COUNT(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_line_items l WHERE l.order_id = o.id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bare, 0);
}

/// A parent staged by a killed run, then changed into a listing the job cannot read: the walk
/// quarantines the newer listing, and the older one still waiting in `staging` must neither be
/// written over the stored row nor release the newer one from quarantine (found by the crash
/// trials: a kill aimed at the index build, then a change, left the quarantine without it).
#[test]
fn a_parent_the_walk_could_not_read_is_not_overwritten_by_its_older_staged_listing() {
    use understory_sync::store::Store;
    use understory_sync::streams;
    use understory_sync::test_support::store::{Children, Commit, Prune, Quarantined, Staged};
    use understory_sync::test_support::streams::At;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.sqlite");
    let store = Store::open(&db).unwrap();
    let orders = streams::ALL.iter().find(|s| s.name == "orders").unwrap();
    let id = "3ce64662-51f7-441a-a1ad-0200000000c5";
    let older = format!(
        r#"{{"id":"{id}","number":"1","status":"COMPLETED","created_at":"2025-10-27T14:30:00Z","updated_at":"2025-10-31T09:14:21Z"}}"#
    );
    let newer =
        format!(r#"{{"id":"{id}","number":"1","status":"COMPLETED","updated_at":"2026-01-01T02:07:35Z"}}"#);
    open(&db)
        .execute(
            "INSERT INTO staging (stream, item_key, raw_json, staged_at) VALUES ('orders', ?1, ?2, '2026-01-01T00:00:00Z')",
            [id, older.as_str()],
        )
        .unwrap();
    let now = chrono::Utc::now();
    // The walk lists the newer version, which lacks `created_at`.
    let raw = serde_json::value::RawValue::from_string(newer.clone()).unwrap();
    let error = orders.read(At::TOP, &raw).unwrap_err();
    store
        .commit_group(
            &[Commit {
                stream: "orders",
                quarantined: vec![Quarantined {
                    stream: "orders",
                    key: id.into(),
                    id: Some(id.into()),
                    parent_id: None,
                    error,
                    raw_json: newer.clone(),
                }],
                ..Commit::default()
            }],
            now,
        )
        .unwrap();
    assert_eq!(staged(&db, "orders"), 0, "the older listing no longer waits");
    // A fan-out that had the older listing in hand when the walk quarantined the newer one.
    let raw = serde_json::value::RawValue::from_string(older.clone()).unwrap();
    let row = orders.read(At::TOP, &raw).unwrap().row;
    store
        .commit_group(
            &[Commit {
                stream: "orders",
                rows: vec![row],
                children: vec![Children {
                    table: "order_line_items",
                    parent_id: id.into(),
                    rows: Vec::new(),
                    prune: Prune::BeyondPosition(0),
                    quarantined: Vec::new(),
                }],
                unstage: Some(Staged {
                    item_key: id.into(),
                    raw_json: older,
                }),
                ..Commit::default()
            }],
            now,
        )
        .unwrap();
    let c = open(&db);
    let stored: i64 = c
        .query_row("SELECT count(*) FROM orders WHERE id = ?1", [id], |r| r.get(0))
        .unwrap();
    let kept: String = c
        .query_row("SELECT raw_json FROM quarantine WHERE item_key = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!((stored, kept), (0, newer));
}

/// The same parent when a per-parent stream is turned on later: the backfill stages every
/// stored parent, but not one whose newer listing is in quarantine (writing its older copy
/// would release the newer one).
#[test]
fn a_per_parent_stream_turned_on_later_leaves_a_quarantined_parent_to_its_newer_listing() {
    use understory_sync::store::Store;
    use understory_sync::streams;
    use understory_sync::test_support::store::{Commit, Quarantined};
    use understory_sync::test_support::streams::At;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sync.sqlite");
    let store = Store::open(&db).unwrap();
    let orders = streams::ALL.iter().find(|s| s.name == "orders").unwrap();
    let row = |id: &str| {
        let raw = format!(
            r#"{{"id":"{id}","number":"1","status":"COMPLETED","created_at":"2025-10-27T14:30:00Z","updated_at":"2025-10-31T09:14:21Z"}}"#
        );
        orders
            .read(At::TOP, &serde_json::value::RawValue::from_string(raw).unwrap())
            .unwrap()
            .row
    };
    let now = chrono::Utc::now();
    store
        .commit_group(
            &[Commit {
                stream: "orders",
                rows: vec![row("o-1"), row("o-2")],
                ..Commit::default()
            }],
            now,
        )
        .unwrap();
    // o-2 is listed again, unreadable now.
    store
        .commit_group(
            &[Commit {
                stream: "orders",
                quarantined: vec![Quarantined {
                    stream: "orders",
                    key: "o-2".into(),
                    id: Some("o-2".into()),
                    parent_id: None,
                    error: "`created_at` is missing".into(),
                    raw_json: r#"{"id":"o-2"}"#.into(),
                }],
                ..Commit::default()
            }],
            now,
        )
        .unwrap();
    assert_eq!(store.backfill("orders", "order_refunds", now).unwrap(), Some(1));
    let waiting: Vec<String> = open(&db)
        .prepare("SELECT item_key FROM staging")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(waiting, ["o-1"]);
}
