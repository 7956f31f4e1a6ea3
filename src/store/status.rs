//! What `status` reads: recent runs, each stream's checkpoint, rows per table, quarantine,
//! deferred indexes and staged parents, without writing a byte.

use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;

use super::deferred::deferred_tables;
use super::error::Error;
use super::read_only::read_only;
use super::statements;
use crate::counts::Counts;

/// A stream's checkpoint as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamState {
    pub stream: String,
    pub high_water_mark: Option<String>,
    pub(crate) has_cursor: bool,
    pub cursor_saved_at: Option<String>,
    pub pass_in_progress: Option<String>,
    pub pass_pages: i64,
    pub(crate) last_completed_at: Option<String>,
}

/// One `sync_runs` row as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub status: String,
    /// Its rows (`rows_inserted`, …) and requests; the other counters are per stream, in
    /// `streams_json`.
    #[serde(flatten, serialize_with = "run_columns")]
    pub counts: Counts,
    pub error: Option<String>,
    /// The adaptive pace at the end of the run, requests per second.
    pub pace_rps: Option<f64>,
    pub paused_ms: i64,
}

/// The pace the last run kept (`pace_state`), as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PaceRow {
    /// The pace, requests per second.
    pub pace_rps: f64,
    /// The learned budget: just under where the API last answered 429 (none before a first 429).
    pub budget_rps: Option<f64>,
    /// The highest rate the API answered clean for a clean spell.
    pub(crate) proven_rps: Option<f64>,
    pub(crate) updated_at: String,
}

/// What `status` reports: recent runs, each stream's checkpoint, rows per table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub database: PathBuf,
    pub runs: Vec<RunRow>,
    pub streams: Vec<StreamState>,
    pub rows: Vec<(String, i64)>,
    /// Items in quarantine, per stream.
    pub quarantine: Vec<(String, i64)>,
    /// Tables whose secondary indexes wait for their first full load to complete.
    pub deferred_indexes: Vec<(String, i64)>,
    /// Parents waiting in `staging` for their per-parent lists, per stream: what a run's
    /// fan-out has still to do (a run in progress, or one that was stopped).
    pub staged: Vec<(String, i64)>,
    /// The pace the last run kept, if any run saved one.
    pub pace: Option<PaceRow>,
    /// The webhook path's health, when a receiver ever ran on this database.
    pub webhooks: Option<super::inbox::WebhookHealth>,
}

/// A run's counters under the names of its `sync_runs` columns.
fn run_columns<S: serde::Serializer>(c: &Counts, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = s.serialize_map(None)?;
    for (change, n) in c.changes() {
        map.serialize_entry(&format!("rows_{change}"), &n)?;
    }
    map.serialize_entry("requests", &c.requests)?;
    map.serialize_entry("retries", &c.retries)?;
    map.serialize_entry("rate_limited", &c.rate_limited)?;
    map.end()
}

fn recent_runs(conn: &rusqlite::Connection, limit: i64) -> rusqlite::Result<Vec<RunRow>> {
    // A file an older version wrote, not migrated since (`status` never migrates), has no
    // `rows_removed`.
    let current = conn.query_row(statements::get("sync_runs", "has_rows_removed"), [], |r| {
        r.get::<_, i64>(0)
    })? > 0;
    let mut stmt = conn.prepare(if current {
        statements::get("sync_runs", "recent")
    } else {
        statements::get("sync_runs", "recent_before_17")
    })?;
    stmt.query_map(&[(":limit", &limit)], |r| {
        // A count is never negative; `rows_removed` is NULL in the rows of runs before
        // schema 17, and in a file still at an older schema.
        let n = |i| r.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(0).max(0) as u64);
        Ok(RunRow {
            id: r.get(0)?,
            started_at: r.get(1)?,
            ended_at: r.get(2)?,
            status: r.get(3)?,
            counts: Counts {
                inserted: n(4)?,
                updated: n(5)?,
                unchanged: n(6)?,
                removed: n(7)?,
                requests: n(8)?,
                retries: n(9)?,
                rate_limited: n(10)?,
                ..Counts::default()
            },
            error: r.get(11)?,
            pace_rps: r.get(12)?,
            paused_ms: r.get(13)?,
        })
    })?
    .collect()
}

/// Reads the status of the database at `path` without writing to it: the last `runs` runs, and
/// the rows of each of `tables` (live rows, where a table marks removals).
pub fn status(path: &Path, runs: i64, tables: &[&'static str]) -> Result<Status, Error> {
    read_only(path, |conn| read(conn, path, runs, tables))
}

fn read(
    conn: &rusqlite::Connection,
    path: &Path,
    runs: i64,
    tables: &[&'static str],
) -> rusqlite::Result<Status> {
    let runs = recent_runs(conn, runs)?;
    let mut stmt = conn.prepare(statements::get("sync_state", "all"))?;
    let streams = stmt
        .query_map([], |r| {
            Ok(StreamState {
                stream: r.get(0)?,
                high_water_mark: r.get(1)?,
                has_cursor: r.get(2)?,
                cursor_saved_at: r.get(3)?,
                pass_in_progress: r.get(4)?,
                pass_pages: r.get(5)?,
                last_completed_at: r.get(6)?,
            })
        })
        .and_then(Iterator::collect)?;
    let mut rows = Vec::with_capacity(tables.len());
    for &table in tables {
        // A database written by an older version (status never migrates) may lack a table.
        match conn.query_row(statements::get(table, "count"), [], |r| r.get::<_, i64>(0)) {
            Ok(n) => rows.push((table.to_owned(), n)),
            Err(e) if e.to_string().contains("no such table") => {}
            Err(e) => return Err(e),
        }
    }
    let mut stmt = conn.prepare(statements::get("quarantine", "by_stream"))?;
    let quarantine = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(Iterator::collect)?;
    // A database from before migration 13 (status never migrates) has no such table.
    let deferred_indexes = match deferred_tables(conn) {
        Ok(tables) => tables,
        Err(e) if e.to_string().contains("no such table") => Vec::new(),
        Err(e) => return Err(e),
    };
    // `staging` came with migration 05; an older database (status never migrates) has none.
    let staged = match conn.prepare(statements::get("staging", "by_stream")) {
        Ok(mut stmt) => stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)?,
        Err(e) if e.to_string().contains("no such table") => Vec::new(),
        Err(e) => return Err(e),
    };
    let pace = conn
        .query_row(statements::get("pace_state", "status"), [], |r| {
            Ok(PaceRow {
                pace_rps: r.get(0)?,
                budget_rps: r.get(1)?,
                proven_rps: r.get(2)?,
                updated_at: r.get(3)?,
            })
        })
        .optional()?;
    // The inbox came with migration 21; an older database (status never migrates) has none.
    let webhooks = match super::inbox::webhook_health_of(conn) {
        Ok(h) => h.ever_ran.then_some(h),
        Err(e) if e.to_string().contains("no such") => None,
        Err(e) => return Err(e),
    };
    Ok(Status {
        webhooks,
        pace,
        deferred_indexes,
        staged,
        database: path.to_owned(),
        runs,
        streams,
        rows,
        quarantine,
    })
}
