//! Confirmed removals: consents removed from the sandbox while scans run are never marked
//! removed while the API still lists them, and every real removal is recorded within two runs.

use std::time::Duration;
use understory_sync::test_support::config::RawStreamsExt as _;

use understory_sandbox::config::FaultConfig;
use understory_sync::sync::RunStatus;

use crate::support::*;

const CONSENTS: &str = "marketing_consents";

/// Whether the API lists the consent stored under `key`.
fn listed(truth: &understory_sandbox::Truth, key: &str) -> bool {
    truth
        .rows(CONSENTS)
        .contains_key(&(String::new(), key.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consents_removed_during_scans_are_marked_only_once_confirmed() {
    let mut sc = small();
    sc.data.consents = 2_500;
    sc.data.bookings = 50;
    // One consent removed (and one added) per step; answers slowed so each scan spans several
    // steps and removals land ahead of the cursor, shifting the rest under it.
    sc.mutate.consent_churn_share = 0.0;
    sc.faults = FaultConfig {
        slow: 1.0,
        slow_ms: 4,
        ..FaultConfig::default()
    };
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.streams.set("bookings", false);
    raw.streams.set("orders", false);
    raw.streams.set("events", false);
    raw.streams.set("experiences", false);
    raw.api.page_size = 20;
    let cfg = config(raw);
    sync(&cfg).await;
    let wrongly_removed = || -> Vec<String> {
        let truth = sb.truth();
        open(&db)
            .prepare("SELECT consent_key FROM marketing_consents WHERE removed_at IS NOT NULL")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .filter(|k| listed(&truth, k))
            .collect()
    };
    sb.record();
    let mut removed_total = 0;
    for _ in 0..8 {
        let (run, ()) = tokio::join!(sync(&cfg), async {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(120)).await;
                sb.mutate(1);
            }
        });
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        removed_total += stream(&run, "marketing_consents").counts.removed;
        let wrong = wrongly_removed();
        assert!(
            wrong.is_empty(),
            "marked removed while the API lists them: {wrong:?}"
        );
    }
    assert!(removed_total > 0, "removals were recorded along the way");
    let removed_in_runs: i64 = open(&db)
        .query_row(
            "SELECT SUM(rows_removed) FROM (SELECT rows_removed FROM sync_runs ORDER BY id DESC LIMIT 8)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        removed_in_runs as u64, removed_total,
        "each run's row counts the removals its report counted"
    );
    let asked = |status: u16| {
        sb.arrivals()
            .iter()
            .filter(|a| a.path.starts_with("/v1/marketing-consents/") && a.status == status)
            .count()
    };
    assert!(asked(404) > 0, "removals were confirmed by id");
    assert!(
        asked(200) > 0,
        "some consents a scan missed were still there: the case one traversal gets wrong"
    );
    // Quiet now: within two runs every real removal is recorded, and nothing else.
    for _ in 0..2 {
        let run = sync(&cfg).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    }
    let truth = sb.truth();
    let got = stored(&db);
    assert_eq!(got.rows(CONSENTS).len(), truth.rows(CONSENTS).len());
    assert!(
        got.rows(CONSENTS) == truth.rows(CONSENTS),
        "live consents equal the API's"
    );
    assert!(wrongly_removed().is_empty());
    let seen_rows: i64 = open(&db)
        .query_row("SELECT COUNT(*) FROM scan_seen", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        seen_rows as usize,
        truth.rows(CONSENTS).len(),
        "the scan's keys live in SQLite"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_records_the_removal_of_a_consent_without_an_id() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.streams = understory_sync::config::RawStreams::only(&["marketing_consents"]);
    let cfg = config(raw);
    sync(&cfg).await;
    let live = |db: &std::path::Path| -> Vec<String> {
        open(db)
            .prepare("SELECT consent_key FROM marketing_consents WHERE removed_at IS NULL AND consent_key LIKE 'legacy:%'")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(!live(&db).is_empty(), "the sandbox sends consents without an id");
    // Advance the world until a stored consent without an id is gone from the API.
    let mut gone = None;
    for _ in 0..400 {
        sb.mutate(1);
        let truth = sb.truth();
        if let Some(k) = live(&db).into_iter().find(|k| !listed(&truth, k)) {
            gone = Some(k);
            break;
        }
    }
    let gone = gone.expect("a consent without an id was removed");
    sb.record();
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert!(
        !live(&db).contains(&gone),
        "{gone} is marked removed by this one run"
    );
    let truth = sb.truth();
    assert!(
        stored(&db).rows(CONSENTS) == truth.rows(CONSENTS),
        "live consents equal the API's after one run"
    );
    // The list was scanned twice in this run (the second settles what had no id), no more.
    let scans = sb
        .arrivals()
        .iter()
        .filter(|a| a.path == "/v1/marketing-consents" && a.status == 200)
        .count();
    let pages = truth.rows(CONSENTS).len().div_ceil(100);
    assert_eq!(scans, 2 * pages, "two whole scans of {pages} page(s)");
}
