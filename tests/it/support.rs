//! Shared test fixtures: a small sandbox, a fast sync config, and ground-truth comparison.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use secrecy::SecretString;
use serde_json::Value;
use understory_sandbox::resources::Rows;
use understory_sandbox::{Sandbox, SandboxConfig, Truth};
use understory_sync::config::{self, Config, RawConfig};
use understory_sync::shutdown::Stop;
use understory_sync::sync::RunReport;
use understory_sync::test_support;

/// A sandbox small enough for a test to sync in about a second.
pub fn small() -> SandboxConfig {
    let mut c = SandboxConfig::default();
    c.data.bookings = 240;
    c.data.consents = 90;
    c.data.events = 25;
    c.data.experiences = 6;
    c
}

pub async fn start(cfg: SandboxConfig) -> Sandbox {
    Sandbox::start(cfg, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("sandbox starts")
}

/// A raw config pointed at `sb`, fast enough for tests: 429s wait 1 s, backoff is short.
pub fn raw_config(sb: &Sandbox, db: &Path) -> RawConfig {
    let mut raw = RawConfig {
        database: db.to_owned(),
        ..RawConfig::default()
    };
    raw.auth.token_url = sb.token_url();
    raw.auth.client_id = Some("sandbox-client".into());
    raw.auth.client_secret = Some(SecretString::from("sandbox-secret".to_owned()));
    raw.api.base_url = sb.base_url();
    raw.api.requests_per_second = 5_000;
    raw.api.max_requests_per_second = 5_000;
    raw.api.burst = 500;
    raw.api.max_concurrent = 8;
    raw.api.request_timeout_secs = 5;
    raw.retry.initial_backoff_ms = 5;
    raw.retry.max_backoff_ms = 50;
    raw.retry.rate_limited_wait_secs = 1;
    raw.streams.set("events", true);
    raw.streams.set("experiences", true);
    raw
}

pub fn config(raw: RawConfig) -> Config {
    config::validate(raw, &config::Environment::default(), None).expect("valid config")
}

pub async fn sync(cfg: &Config) -> RunReport {
    test_support::sync::run(cfg, Stop::never())
        .await
        .expect("sync runs")
}

pub fn stream<'a>(r: &'a RunReport, name: &str) -> &'a understory_sync::sync::StreamReport {
    r.streams
        .iter()
        .find(|s| s.stream == name)
        .expect("stream in report")
}

pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("sync.sqlite");
    (dir, db)
}

/// Opens the database as an analyst would: a plain connection, no migrations.
pub fn open(db: &Path) -> Connection {
    #[allow(clippy::disallowed_methods)] // deliberately not store::open: tests read as outsiders
    let c = Connection::open(db).expect("open db");
    c.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    c
}

/// Reads the database back in the shape of `Truth`: every stream's live rows keyed as the
/// truth keys them, and the quarantine.
pub fn stored(db: &Path) -> Truth {
    let c = open(db);
    let mut t = Truth::default();
    for s in understory_sync::streams::ALL {
        t.streams.insert(s.name, rows_of(&c, s));
    }
    t.broken = c
        .prepare("SELECT stream, raw_json FROM quarantine")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    t
}

/// The column naming a per-parent row's parent: `<parent, singular>_id` (`docs/schema.md`).
pub fn parent_column(parent: &str) -> String {
    format!("{}_id", parent.strip_suffix('s').unwrap_or(parent))
}

/// A stream's live rows keyed by (parent id, key): the key is the table's unique key without
/// the parent column, its columns joined by U+001F.
fn rows_of(c: &Connection, s: &understory_sync::streams::Stream) -> Rows {
    let parent = s.parent().map(|p| parent_column(p.name));
    let key: Vec<String> = key_columns(c, s.name)
        .into_iter()
        .filter(|k| Some(k) != parent.as_ref())
        .map(|k| format!("CAST({k} AS TEXT)"))
        .collect();
    let live = if column_names(c, s.name).iter().any(|n| n == "removed_at") {
        "WHERE removed_at IS NULL"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {}, {}, raw_json FROM {} {live}",
        parent.as_deref().unwrap_or("''"),
        key.join(" || char(31) || "),
        s.name
    );
    let mut stmt = c.prepare(&sql).expect("prepare");
    stmt.query_map([], |r| {
        Ok((
            (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            r.get::<_, String>(2)?,
        ))
    })
    .expect("query")
    .map(|r| {
        let (key, raw) = r.expect("row");
        (key, serde_json::from_str(&raw).expect("raw_json is JSON"))
    })
    .collect()
}

/// The columns of `table`, in storage order.
pub fn column_names(c: &Connection, table: &str) -> Vec<String> {
    c.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The streams of `names` that never ran on this database: the oracle leaves a stream that
/// never ran out of the comparison, so a trial asserts that every stream it turned on did.
pub fn never_ran<'a>(db: &Path, names: &[&'a str]) -> Vec<&'a str> {
    names.iter().copied().filter(|n| !stream_ran(db, n)).collect()
}

/// Whether the stream `name` ran on this database (its `sync_state` row exists).
pub fn stream_ran(db: &Path, name: &str) -> bool {
    open(db)
        .query_row("SELECT COUNT(*) FROM sync_state WHERE stream = ?1", [name], |r| {
            r.get::<_, i64>(0)
        })
        .expect("sync_state")
        > 0
}

/// What is stored and what the sandbox lists, made comparable.
///
/// An item the API now sends unreadable (variants) is in quarantine; if an earlier, readable
/// version of it was stored, that row is kept — stale, never lost — so it is left out here,
/// with its lists and their quarantined items.
/// Streams that never ran on this database are left out of both sides.
fn comparable(db: &Path, sb: &Sandbox) -> (Truth, Truth) {
    let mut truth = sb.truth();
    let mut got = stored(db);
    let stale: std::collections::BTreeSet<String> = truth
        .broken
        .iter()
        .filter_map(|(_, raw)| {
            serde_json::from_str::<Value>(raw).ok()?["id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    // A stale parent's lists are kept as they were, the quarantined items among them too.
    {
        let c = open(db);
        let mut of_parent = c
            .prepare("SELECT stream, raw_json FROM quarantine WHERE parent_id = ?1")
            .expect("prepare");
        for parent in &stale {
            let kept: Vec<(String, String)> = of_parent
                .query_map([parent], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            for entry in kept {
                got.broken.remove(&entry);
            }
        }
    }
    for rows in got.streams.values_mut() {
        rows.retain(|(parent, key), _| {
            let stale_parent = stale.contains(parent);
            let stale_row = parent.is_empty() && stale.contains(key);
            !stale_parent && !stale_row
        });
    }
    truth.broken.retain(|(stream, _)| stream_ran(db, stream));
    for stream in understory_sync::streams::ALL {
        if !stream_ran(db, stream.name) {
            truth.streams.remove(stream.name);
        }
    }
    (got, truth)
}

/// Rows a database holds against the sandbox's ground truth, over every table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Divergence {
    /// Rows the sandbox lists.
    pub rows: usize,
    /// Listed rows the database does not hold.
    pub lost: usize,
    /// Rows the database holds that the sandbox does not list (a duplicate under another key, a
    /// row that should be gone, a quarantine entry that should have left).
    pub extra: usize,
    /// Rows held under the right key with other content.
    pub differ: usize,
    /// Keys stored more than once (`count(*)` against `count(DISTINCT key)`), which the
    /// comparison by key above cannot see: it reads rows into maps keyed by it.
    pub stored_twice: usize,
    /// Indexes still set aside for a first load (`deferred_indexes`).
    pub set_aside: usize,
}

impl Divergence {
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.extra == 0 && self.differ == 0 && self.stored_twice == 0 && self.set_aside == 0
    }

    fn tally<K: Ord, V: PartialEq>(&mut self, got: &BTreeMap<K, V>, truth: &BTreeMap<K, V>) {
        self.rows += truth.len();
        for (k, v) in truth {
            match got.get(k) {
                None => self.lost += 1,
                Some(g) if g != v => self.differ += 1,
                Some(_) => {}
            }
        }
        self.extra += got.keys().filter(|k| !truth.contains_key(*k)).count();
    }
}

/// Counts how the database differs from the sandbox's ground truth (see `comparable`).
pub fn divergence(db: &Path, sb: &Sandbox) -> Divergence {
    let (got, truth) = comparable(db, sb);
    let mut d = Divergence::default();
    each_table(&got, &truth, &mut d);
    let c = open(db);
    d.stored_twice = understory_sync::streams::tables()
        .iter()
        .map(|t| keys_stored_twice(&c, t))
        .sum();
    d.set_aside = count_or_no_table(
        c.query_row("SELECT count(*) FROM deferred_indexes", [], |r| r.get(0)),
        "deferred_indexes",
    );
    d
}

/// A count, or 0 where a run killed before its migrations left no table; any other failure
/// fails the test rather than read as "nothing wrong".
fn count_or_no_table(counted: rusqlite::Result<i64>, table: &str) -> usize {
    match counted {
        Ok(n) => n as usize,
        Err(e) if e.to_string().contains("no such table") => 0,
        Err(e) => panic!("counting {table}: {e}"),
    }
}

/// What is done with each table's stored rows and the truth's: the one list of tables both
/// `divergence` and `lost_rows` walk.
trait Tables {
    fn table<K: Ord + std::fmt::Debug, V: PartialEq>(
        &mut self,
        name: &str,
        got: &BTreeMap<K, V>,
        truth: &BTreeMap<K, V>,
    );
}

fn each_table(got: &Truth, truth: &Truth, v: &mut impl Tables) {
    for stream in understory_sync::streams::ALL {
        v.table(stream.name, got.rows(stream.name), truth.rows(stream.name));
    }
    let set = |s: &std::collections::BTreeSet<(String, String)>| -> BTreeMap<(String, String), ()> {
        s.iter().map(|k| (k.clone(), ())).collect()
    };
    v.table("quarantine", &set(&got.broken), &set(&truth.broken));
}

impl Tables for Divergence {
    fn table<K: Ord + std::fmt::Debug, V: PartialEq>(
        &mut self,
        _: &str,
        got: &BTreeMap<K, V>,
        truth: &BTreeMap<K, V>,
    ) {
        self.tally(got, truth);
    }
}

/// Which listed rows the database lacks, table by table (the first few keys of each): what a
/// failing trial prints next to its `Divergence`.
pub fn lost_rows(db: &Path, sb: &Sandbox) -> Vec<String> {
    struct Lost(Vec<String>);
    impl Tables for Lost {
        fn table<K: Ord + std::fmt::Debug, V: PartialEq>(
            &mut self,
            name: &str,
            got: &BTreeMap<K, V>,
            truth: &BTreeMap<K, V>,
        ) {
            let keys: Vec<&K> = truth.keys().filter(|k| !got.contains_key(*k)).collect();
            if !keys.is_empty() {
                self.0.push(format!(
                    "{name}: {} lost, e.g. {:?}",
                    keys.len(),
                    &keys[..keys.len().min(3)]
                ));
            }
        }
    }
    let (got, truth) = comparable(db, sb);
    let mut lost = Lost(Vec::new());
    each_table(&got, &truth, &mut lost);
    lost.0
}

/// The columns of `table`'s unique index (its primary key or `<table>_key`), or `id` while a
/// first load has it set aside.
fn key_columns(c: &Connection, table: &str) -> Vec<String> {
    let unique: Option<String> = c
        .query_row(
            &format!("SELECT name FROM pragma_index_list('{table}') WHERE \"unique\" = 1 ORDER BY origin = 'pk' DESC LIMIT 1"),
            [],
            |r| r.get(0),
        )
        .ok();
    match unique {
        Some(index) => c
            .prepare(&format!(
                "SELECT name FROM pragma_index_info('{index}') ORDER BY seqno"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap(),
        None => vec!["id".to_owned()],
    }
}

/// How many keys `table` holds more than once. The key is the columns of the table's unique
/// index (its primary key or `<table>_key`), or `id` while a first load has it set aside.
pub fn keys_stored_twice(c: &Connection, table: &str) -> usize {
    let key = key_columns(c, table);
    let counted = c.query_row(
        &format!(
            "SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY {} HAVING count(*) > 1)",
            key.join(", ")
        ),
        [],
        |r| r.get(0),
    );
    count_or_no_table(counted, table)
}

/// `PRAGMA integrity_check` answers `ok`.
pub fn integrity_ok(db: &Path) -> bool {
    open(db)
        .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .is_ok_and(|ok| ok == "ok")
}

/// Asserts the database's bookings and their tickets are exactly the sandbox's, for a sync of
/// the bookings streams alone (tickets count only if their stream ran).
pub fn assert_bookings_converged(db: &Path, sb: &Sandbox) {
    let (got, truth) = comparable(db, sb);
    for name in ["bookings", "booking_tickets"] {
        assert_rows_equal(name, got.rows(name), truth.rows(name));
    }
}

/// Asserts one stream's rows equal the truth's, naming a few that differ.
fn assert_rows_equal(name: &str, got: &Rows, truth: &Rows) {
    let differ = |a: &Rows, b: &Rows| -> Vec<String> {
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| format!("{k:?}: {v}"))
            .take(3)
            .collect()
    };
    assert!(
        got == truth,
        "{name} differ from the sandbox ({} vs {}): stored only {:?}; API only {:?}",
        got.len(),
        truth.len(),
        differ(got, truth),
        differ(truth, got),
    );
}

/// Asserts the database holds exactly the sandbox's ground truth, stream by stream. A stream
/// that ran must find rows, or its check would prove nothing; but refunds, which the sandbox
/// makes only as it mutates, so a first sync rightly finds none.
pub fn assert_converged(db: &Path, sb: &Sandbox) {
    let d = divergence(db, sb);
    assert_eq!(
        (d.stored_twice, d.set_aside),
        (0, 0),
        "no key stored twice, no index left aside"
    );
    let (got, truth) = comparable(db, sb);
    for stream in understory_sync::streams::ALL {
        if stream_ran(db, stream.name) && stream.name != "order_refunds" {
            assert!(
                !truth.rows(stream.name).is_empty(),
                "{}: the sandbox lists none, so the check proves nothing",
                stream.name
            );
        }
        assert_rows_equal(stream.name, got.rows(stream.name), truth.rows(stream.name));
    }
    assert!(
        got.broken == truth.broken,
        "quarantine differs from the unreadable items the API lists: {:?} vs {:?}",
        got.broken,
        truth.broken
    );
    assert!(integrity_ok(db), "integrity_check");
}

/// A checksum of every data table's content, to prove a run wrote nothing.
pub fn fingerprint(db: &Path) -> String {
    fingerprint_columns(db, &BTreeMap::new())
}

/// The columns of every data table of `db`, by table: what a migration must keep.
pub fn data_columns(db: &Path) -> BTreeMap<String, Vec<String>> {
    let c = open(db);
    understory_sync::streams::tables()
        .iter()
        .map(|t| ((*t).to_owned(), column_names(&c, t)))
        .collect()
}

/// `fingerprint` over the named columns of each table (all of them where `only` names none).
pub fn fingerprint_columns(db: &Path, only: &BTreeMap<String, Vec<String>>) -> String {
    let c = open(db);
    let mut out = String::new();
    for t in understory_sync::streams::tables() {
        // Every column, typed, in storage order: a migration that shuffled typed columns, or
        // a run that rewrote a row, changes it, not only one that changed `raw_json`.
        let select = only
            .get(t)
            .filter(|cols| !cols.is_empty())
            .map_or_else(|| "*".to_owned(), |cols| cols.join(", "));
        let mut stmt = match c.prepare(&format!("SELECT {select} FROM {t} ORDER BY rowid")) {
            Err(e) if e.to_string().contains("no such table") => {
                // A table an older schema lacks reads as empty, as it will be once migrated.
                out.push_str(&format!("{t}:0:0;"));
                continue;
            }
            other => other.expect("fingerprint"),
        };
        let columns = stmt.column_count();
        let mut rows = stmt.raw_query();
        let (mut n, mut h) = (0u64, 0u64);
        let mut add = |bytes: &[u8]| {
            for b in bytes {
                h = h.wrapping_mul(31).wrapping_add(u64::from(*b));
            }
        };
        while let Some(row) = rows.next().expect("fingerprint row") {
            n += 1;
            for i in 0..columns {
                use rusqlite::types::ValueRef;
                match row.get_ref(i).expect("column") {
                    ValueRef::Null => add(b"N"),
                    ValueRef::Integer(v) => add(format!("I{v}").as_bytes()),
                    ValueRef::Real(v) => add(format!("R{v}").as_bytes()),
                    ValueRef::Text(v) => {
                        add(b"T");
                        add(v);
                    }
                    ValueRef::Blob(v) => {
                        add(b"B");
                        add(v);
                    }
                }
                add(b"|");
            }
        }
        out.push_str(&format!("{t}:{n}:{h};"));
    }
    out
}

/// An access token for the sandbox's default key with `scope`.
pub async fn token(sb: &Sandbox, scope: &str) -> String {
    let body = format!(
        "grant_type=client_credentials&scope={scope}&audience=https://api.understory.io&client_id=sandbox-client&client_secret=sandbox-secret"
    );
    let v: Value = http()
        .post(sb.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    v["access_token"].as_str().expect("access_token").to_owned()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("understory-sync-tests")
        .build()
        .expect("client")
}

/// The value of the first `Key=value` line of a unit file's text, trimmed.
pub fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit sets {key}=:\n{unit}"))
        .trim()
        .to_owned()
}
