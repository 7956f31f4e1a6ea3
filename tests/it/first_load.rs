//! A stream's first full load sets its table's secondary indexes aside and builds them once it
//! completes (issue 10: at a million bookings the random index writes cost more than the rows).

use std::path::Path;

use understory_sync::config::RawStreams;
use understory_sync::sandbox::Fault;
use understory_sync::store::Store;
use understory_sync::sync::RunStatus;

use crate::support::*;

/// The definitions of `table`'s indexes as SQLite holds them, by name.
fn indexes(db: &Path, table: &str) -> Vec<(String, String)> {
    let c = open(db);
    let mut stmt = c
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL ORDER BY name")
        .unwrap();
    stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn set_aside(db: &Path) -> i64 {
    open(db)
        .query_row("SELECT count(*) FROM deferred_indexes", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_wait_for_the_first_full_load_and_come_back_exactly() {
    let (dir, db) = temp_db();
    // What the migrations create: the reference.
    let fresh = dir.path().join("fresh.sqlite");
    drop(Store::open(&fresh).unwrap());
    let want = indexes(&fresh, "bookings");
    assert!(want.len() >= 5, "{want:?}");

    let sb = start(small()).await;
    let mut raw = raw_config(&sb, &db);
    raw.streams = RawStreams::only(&["bookings"]);
    raw.api.page_size = 20;
    raw.retry.max_attempts = 1;
    let cfg = config(raw);
    // The load dies on its fourth page: rows are in, the indexes still aside.
    sb.inject_after(3, Fault::Status(503), 1);
    let run = sync(&cfg).await;
    assert_ne!(run.status, RunStatus::Succeeded, "{run:?}");
    let c = open(&db);
    let rows: i64 = c
        .query_row("SELECT count(*) FROM bookings", [], |r| r.get(0))
        .unwrap();
    assert!(rows > 0, "some pages landed");
    assert!(
        indexes(&db, "bookings").is_empty(),
        "{:?}",
        indexes(&db, "bookings")
    );
    assert_eq!(set_aside(&db), want.len() as i64);
    let st = understory_sync::store::status(&db, 1, &["bookings"]).unwrap();
    assert_eq!(st.deferred_indexes, [("bookings".to_owned(), want.len() as i64)]);

    // The resumed load completes: every index is back, as the migrations wrote it.
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(indexes(&db, "bookings"), want);
    assert_eq!(set_aside(&db), 0);
    // The rebuilt index answers queries (INDEXED BY fails if it cannot be used).
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM bookings INDEXED BY bookings_event_id WHERE event_id > ''",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 240);

    // Later runs are incremental on a full table: nothing is set aside again.
    sb.mutate(1);
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(indexes(&db, "bookings"), want);
    assert_eq!(set_aside(&db), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_set_aside_for_a_stream_turned_off_are_built_by_the_next_run() {
    let (_dir, db) = temp_db();
    let sb = start(small()).await;
    let mut raw = raw_config(&sb, &db);
    raw.streams = RawStreams::only(&["bookings"]);
    raw.retry.max_attempts = 1;
    raw.api.page_size = 20;
    sb.inject_after(2, Fault::Status(503), 1);
    sync(&config(raw)).await;
    assert!(set_aside(&db) > 0);
    // A scanned stream never sets its indexes aside.
    assert!(!indexes(&db, "marketing_consents").is_empty());
    let mut raw = raw_config(&sb, &db);
    raw.streams = RawStreams::only(&["marketing_consents"]);
    let run = sync(&config(raw)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(set_aside(&db), 0);
    assert!(!indexes(&db, "bookings").is_empty());
}
