//! A stream's first full load sets its table's indexes aside (the key too, when nothing looks
//! rows up by it meanwhile) and builds them once it completes (at a million bookings
//! the random index writes cost more than the rows).

use std::path::Path;
use understory_sync::test_support::config::RawStreamsExt as _;

use understory_sandbox::{Fault, Sandbox};
use understory_sync::config::Config;
use understory_sync::config::RawStreams;
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

/// A sync of `streams` alone in pages of 20, failing at the first fault (the tests inject one
/// to interrupt a load).
fn loading(sb: &Sandbox, db: &Path, streams: &[&str]) -> Config {
    let mut raw = raw_config(sb, db);
    raw.streams = RawStreams::only(streams);
    raw.api.page_size = 20;
    raw.retry.max_attempts = 1;
    config(raw)
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
    let cfg = loading(&sb, &db, &["bookings"]);
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
    let cfg = loading(&sb, &db, &["bookings"]);
    sb.inject_after(2, Fault::Status(503), 1);
    sync(&cfg).await;
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

fn duplicate_ids(db: &Path) -> i64 {
    open(db)
        .query_row("SELECT count(*) - count(DISTINCT id) FROM bookings", [], |r| {
            r.get(0)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_first_load_folds_ids_it_read_twice_into_their_last_listing() {
    // Every cursor refused: each page is asked for again from the high-water mark, so the
    // overlap is read twice and, with the key aside, stored twice until the load completes.
    let mut sc = small();
    sc.cursor_ttl_secs = 0;
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let cfg = loading(&sb, &db, &["bookings"]);
    sb.inject_after(6, Fault::Status(503), 1);
    let run = sync(&cfg).await;
    assert_ne!(run.status, RunStatus::Succeeded, "{run:?}");
    assert!(
        !indexes(&db, "bookings").iter().any(|(n, _)| n == "bookings_key"),
        "the key is set aside"
    );
    let twice = duplicate_ids(&db);
    assert!(twice > 0, "the overlap was stored twice");
    // The oracle the crash trials use sees them too, though it compares rows by key.
    let d = divergence(&db, &sb);
    assert!(d.stored_twice > 0 && d.set_aside > 0 && !d.is_clean(), "{d:?}");
    // The earliest copy of an id read twice, to check the fold keeps when it was first stored.
    let c = open(&db);
    let (id, first): (String, String) = c
        .query_row(
            "SELECT id, min(first_synced_at) FROM bookings GROUP BY id HAVING count(*) > 1 LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();

    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(duplicate_ids(&db), 0);
    assert!(indexes(&db, "bookings").iter().any(|(n, _)| n == "bookings_key"));
    assert_eq!(set_aside(&db), 0);
    let kept: (i64, String) = c
        .query_row(
            "SELECT count(*), first_synced_at FROM bookings WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(kept, (1, first));
    assert_bookings_converged(&db, &sb);
    // The key holds from now on: a second copy of a stored booking is refused.
    let dup = c.execute("INSERT INTO bookings SELECT * FROM bookings WHERE id = ?1", [&id]);
    assert!(dup.is_err(), "bookings_key is unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_stays_while_per_parent_streams_look_bookings_up_and_comes_back_for_them() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    // With booking_tickets on, the fan-out looks each listed booking up by id: the key stays.
    let cfg = loading(&sb, &db, &["bookings", "booking_tickets"]);
    sb.inject_after(3, Fault::Status(503), 1);
    sync(&cfg).await;
    let names: Vec<String> = indexes(&db, "bookings").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["bookings_key"], "only the secondary indexes are aside");

    // A keyless load interrupted, then resumed with booking_tickets turned on: the run builds
    // the key before the fan-out needs it, and everything converges.
    let (_dir2, db2) = temp_db();
    let cfg = loading(&sb, &db2, &["bookings"]);
    sb.inject_after(3, Fault::Status(503), 1);
    sync(&cfg).await;
    assert!(indexes(&db2, "bookings").is_empty(), "the key is aside too");
    let mut raw = raw_config(&sb, &db2);
    raw.streams = RawStreams::only(&["bookings", "booking_tickets"]);
    let run = sync(&config(raw)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(set_aside(&db2), 0);
    assert_eq!(duplicate_ids(&db2), 0);
    let tickets: i64 = open(&db2)
        .query_row("SELECT count(*) FROM booking_tickets", [], |r| r.get(0))
        .unwrap();
    assert!(tickets > 0);
    assert_bookings_converged(&db2, &sb);
}
