//! Issue 5: the SQLite file analysts open — dictionary, example queries, reading while the job
//! writes, and schema upgrades.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use understory_sandbox::Sandbox;
use understory_sync::sync::RunStatus;

use crate::support::*;

fn columns(db: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let c = open(db);
    let mut stmt = c
        .prepare("SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%'")
        .unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (t, col) = r.unwrap();
        out.entry(t).or_default().insert(col);
    }
    out
}

/// The dictionary's tables and views with their columns, as the crate reads `docs/schema.md`
/// (the same reading the Datasette metadata is built from).
fn dictionary() -> BTreeMap<String, BTreeSet<String>> {
    understory_sync::test_support::dictionary::entries()
        .into_iter()
        .map(|e| (e.name, e.columns.into_iter().map(|c| c.name).collect()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dictionary_covers_every_table_view_and_column() {
    let (_dir, db) = temp_db();
    drop(understory_sync::test_support::store::open(&db).unwrap());
    let schema = columns(&db);
    let dict = dictionary();
    for (table, cols) in &schema {
        if table == "sqlite_sequence" {
            continue;
        }
        let documented = dict
            .get(table)
            .unwrap_or_else(|| panic!("docs/schema.md has no section for `{table}`"));
        let missing: Vec<_> = cols.difference(documented).collect();
        assert!(
            missing.is_empty(),
            "docs/schema.md lacks `{table}` columns {missing:?}"
        );
        let stale: Vec<_> = documented.difference(cols).collect();
        assert!(
            stale.is_empty(),
            "docs/schema.md documents `{table}` columns that do not exist: {stale:?}"
        );
    }
    for table in dict.keys() {
        assert!(
            schema.contains_key(table),
            "docs/schema.md documents `{table}`, which does not exist"
        );
    }
    for view in [
        "bookings_enriched",
        "orders_with_totals",
        "daily_revenue",
        "revenue_by_experience",
        "marketing_consents_active",
        "line_items_with_order",
    ] {
        assert!(schema.contains_key(view), "view {view}");
    }
}

/// Every view column has a type SQLite reports (`PRAGMA table_info`, which gives a CAST's type
/// from SQLite 3.41 on), so a tool that asks SQLite for a view's column types sees numbers and
/// text, not an untyped BLOB: a computed column is a CAST (sql/migrations/22-typed-views).
#[test]
fn every_view_column_has_a_type_sqlite_reports() {
    let (_dir, db) = temp_db();
    drop(understory_sync::test_support::store::open(&db).unwrap());
    let c = open(&db);
    let mut stmt = c
        .prepare("SELECT m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'view'")
        .unwrap();
    let columns: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(columns.len() > 50, "view columns: {}", columns.len());
    let untyped: Vec<String> = columns
        .iter()
        .filter(|(_, _, t)| t.is_empty() || t.eq_ignore_ascii_case("BLOB"))
        .map(|(v, col, t)| format!("{v}.{col} ({t:?})"))
        .collect();
    assert!(untyped.is_empty(), "view columns without a type: {untyped:?}");
}

/// Syncs the sandbox into `db` with every optional stream on, mutates it (refunds, removed
/// consents) and syncs again: a database on which every example query has rows to return.
pub(crate) async fn synced_for_the_example_queries(db: &Path) -> Sandbox {
    let sb = start(small()).await;
    let cfg = config(crate::account::with_optional(raw_config(&sb, db)));
    sync(&cfg).await;
    sb.mutate(3); // refunds and removed consents, for the queries that look at them
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    sb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_query_returns_sensible_rows_on_a_synced_database() {
    let (_dir, db) = temp_db();
    let sb = synced_for_the_example_queries(&db).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/queries");
    let mut ran = 0;
    let c = open(&db);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let sql = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            sql.starts_with("-- ") && sql.lines().next().unwrap().len() > 15,
            "{name} starts with a comment saying what it answers"
        );
        let mut stmt = c.prepare(&sql).unwrap_or_else(|e| panic!("{name}: {e}"));
        let width = stmt.column_count();
        let rows: Vec<Vec<rusqlite::types::Value>> = stmt
            .query_map([], |r| (0..width).map(|i| r.get(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!rows.is_empty(), "{name} returned no rows");
        assert!(
            !matches!(rows[0][0], rusqlite::types::Value::Null),
            "{name}: first row starts with NULL"
        );
        // No column is NULL in every row: each one means something.
        for col in 0..width {
            assert!(
                rows.iter()
                    .any(|r| !matches!(r[col], rusqlite::types::Value::Null)),
                "{name}: column {col} is always NULL"
            );
        }
        ran += 1;
    }
    assert!(ran >= 5, "example queries: {ran}");
    // The views agree with the tables they summarise.
    let (orders, total): (i64, f64) = c
        .query_row("SELECT COUNT(*), SUM(amount) FROM orders_with_totals", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let minor: i64 = c
        .query_row("SELECT SUM(amount_minor) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orders as usize, sb.truth().rows("orders").len());
    assert!((total - minor as f64 / 100.0).abs() < 0.01);
    let active: i64 = c
        .query_row("SELECT COUNT(*) FROM marketing_consents_active", [], |r| r.get(0))
        .unwrap();
    // A legacy consent (no id to ask about) is removed after two consecutive scans missed it:
    // after one, it is still active.
    let pending: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM marketing_consents WHERE removed_at IS NULL AND id IS NULL AND missed_scans > 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        (active - pending) as usize,
        sb.truth().rows("marketing_consents").len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_read_neither_blocks_the_sync_nor_sees_a_half_written_page() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.api.page_size = 10;
    let cfg = config(raw);
    sync(&cfg).await;
    sb.mutate(2);

    // An analyst's read transaction, open across the whole sync.
    let analyst = open(&db);
    analyst.execute_batch("BEGIN").unwrap();
    let count = |c: &rusqlite::Connection| -> (i64, i64) {
        c.query_row(
            "SELECT (SELECT COUNT(*) FROM bookings), (SELECT COUNT(*) FROM orders)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let before = count(&analyst);

    // Meanwhile another reader polls: an order must never be visible without its line items.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = Arc::clone(&done);
        let db = db.clone();
        std::thread::spawn(move || {
            let c = open(&db);
            let mut polls = 0;
            while !done.load(Ordering::Relaxed) {
                let orphans: i64 = c
                    .query_row("SELECT COUNT(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_line_items l WHERE l.order_id = o.id)", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(orphans, 0, "an order was visible without its line items");
                polls += 1;
            }
            polls
        })
    };
    let run = tokio::time::timeout(std::time::Duration::from_secs(60), sync(&cfg))
        .await
        .expect("the sync is not blocked by the reader");
    done.store(true, Ordering::Relaxed);
    let polls = watcher.join().expect("no half-written page was seen");
    assert!(polls > 0);
    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(stream(&run, "bookings").counts.inserted > 0);

    assert_eq!(
        count(&analyst),
        before,
        "the open read transaction keeps its snapshot"
    );
    analyst.execute_batch("COMMIT").unwrap();
    assert_ne!(count(&analyst), before, "a new read sees the sync's rows");
    assert_converged(&db, &sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_the_previous_schema_version_upgrades_with_its_data_intact() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("current.sqlite");
    let cfg = config(raw_config(&sb, &current));
    sync(&cfg).await;

    // Build a version-1 database (the schema before the analyst views) holding the same data.
    let old = dir.path().join("v1.sqlite");
    let v1 = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/migrations/01-initial/up.sql"),
    )
    .unwrap();
    let c = open(&old);
    c.execute_batch(&v1).unwrap();
    c.pragma_update(None, "user_version", 1).unwrap();
    c.execute("ATTACH DATABASE ?1 AS cur", [current.to_str().unwrap()])
        .unwrap();
    for t in understory_sync::streams::tables()
        .iter()
        .chain(&["sync_state", "sync_runs"])
    {
        // The v1 columns only: later versions added some.
        let cols: Vec<String> = c
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}', 'main')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        if cols.is_empty() {
            continue; // a table later versions added
        }
        let cols = cols.join(", ");
        c.execute_batch(&format!("INSERT INTO main.{t} SELECT {cols} FROM cur.{t}"))
            .unwrap();
    }
    c.execute_batch("DETACH DATABASE cur").unwrap();
    drop(c);
    // Every column the old version had, typed: the upgrade must keep each value.
    let v1_columns = data_columns(&old);
    let before = fingerprint_columns(&old, &v1_columns);
    assert!(!columns(&old).contains_key("bookings_enriched"));

    // Opening it with the current code migrates it in place.
    drop(understory_sync::test_support::store::open(&old).unwrap());
    let version: i64 = open(&old)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let latest = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/migrations"))
        .unwrap()
        .count() as i64;
    assert_eq!(version, latest, "migrated to the newest schema");
    assert_eq!(
        fingerprint_columns(&old, &v1_columns),
        before,
        "the upgrade changed no data"
    );
    assert!(columns(&old).contains_key("bookings_enriched"));
    let rows: i64 = open(&old)
        .query_row("SELECT COUNT(*) FROM bookings_enriched", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows as usize, sb.truth().rows("bookings").len());

    // And the job carries on with it: nothing to write, checkpoints kept.
    let mut raw = raw_config(&sb, &old);
    raw.database = old.clone();
    let run = sync(&config(raw)).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.total().inserted + run.total().updated, 0, "{run:?}");
    assert_converged(&old, &sb);
}

/// The streams a query's `-- Needs: [streams] a = true, b = true (…)` header line names (the
/// part before `(`), or None when its header has no such line.
fn needs(sql: &str) -> Option<Vec<String>> {
    let line = sql
        .lines()
        .take_while(|l| l.starts_with("--"))
        .find_map(|l| l.strip_prefix("-- Needs:"))?;
    let list = line
        .trim()
        .strip_prefix("[streams]")
        .unwrap_or_else(|| panic!("a Needs: line names the [streams] keys to turn on: {line}"));
    let list = list.split('(').next().unwrap();
    Some(
        list.split(',')
            .map(|s| {
                let s = s.trim();
                s.strip_suffix("= true")
                    .unwrap_or_else(|| panic!("`name = true` in a Needs: line, not `{s}`"))
                    .trim()
                    .to_owned()
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_returns_nothing_on_a_default_install_names_the_streams_it_needs() {
    use understory_sync::streams::ALL;
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    // Only the streams a default install runs.
    for s in ALL {
        raw.streams.set(s.name, s.enabled_by_default);
    }
    let run = sync(&config(raw)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let c = open(&db);
    let mut with_needs = 0;
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/queries")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let sql = std::fs::read_to_string(&path).unwrap();
        let rows = c
            .prepare(&sql)
            .and_then(|mut s| s.query([])?.next().map(|r| r.is_some()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let needs = needs(&sql);
        match (&needs, rows) {
            (None, false) => panic!(
                "{name} returns no rows on a default install, and its header has no \
                 `-- Needs: [streams] … = true (off by default)` line naming the streams it needs"
            ),
            (Some(n), true) => {
                panic!("{name} returns rows on a default install, yet its header says it needs {n:?}")
            }
            _ => {}
        }
        for s in needs.iter().flatten() {
            let stream = ALL
                .iter()
                .find(|x| x.name == s.as_str())
                .unwrap_or_else(|| panic!("{name}: its Needs: line names `{s}`, which is not a stream"));
            assert!(
                !stream.enabled_by_default,
                "{name}: its Needs: line names `{s}`, which is on by default"
            );
        }
        with_needs += usize::from(needs.is_some());
    }
    assert!(
        with_needs >= 1,
        "no_show_rate_by_experience.sql at least needs optional streams"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_install_names_experiences_and_event_starts_not_ids() {
    let sb = start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    // A config that names no stream: the defaults alone decide what is synced.
    let cfg = dir.path().join("understory-sync.toml");
    let text = format!(
        "database = \"sync.sqlite\"\n[auth]\ntoken_url = \"{}\"\nclient_id = \"sandbox-client\"\n{}\n",
        sb.token_url(),
        crate::cli::fast_api(&sb)
    );
    assert!(!text.contains("[streams]"), "{text}");
    std::fs::write(&cfg, text).unwrap();
    crate::cli::sync_ok(&cfg);
    let c = open(&dir.path().join("sync.sqlite"));
    let (bookings, named, started): (i64, i64, i64) = c
        .query_row(
            "SELECT COUNT(*), COUNT(experience_name), COUNT(event_start_local) FROM bookings_enriched",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(bookings as usize, sb.truth().rows("bookings").len());
    assert_eq!(named, bookings, "every booking's experience is named");
    assert!(started > 0, "event starts: {started} of {bookings}");
    // And the ready-made query lists experiences by name.
    let sql = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/queries/top_experiences.sql"),
    )
    .unwrap();
    let listed: Vec<String> = c
        .prepare(&sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let names: BTreeSet<String> = c
        .prepare("SELECT name FROM experiences")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!listed.is_empty());
    assert!(
        listed.iter().all(|e| names.contains(e)),
        "top_experiences.sql lists names: {listed:?}"
    );
}
