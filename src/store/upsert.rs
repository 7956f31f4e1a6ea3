//! Writing one row: inserted when new, updated when its content changed, left alone (not a
//! byte written) when it did not.

use rusqlite::Connection;

use super::bind::{self, Record};
use super::statements;
use crate::counts::Counts;

/// One item as it will be stored.
#[derive(Debug)]
pub struct Row {
    /// The table, named as in the schema and as its statements file.
    pub(crate) table: &'static str,
    /// Its columns, as the stream typed them (see `bind`); binds `lookup`, `insert` and `update`.
    pub(crate) record: Box<dyn Record>,
    pub(crate) raw_json: String,
    /// The item's key in `quarantine` and `staging` (its id, or a consent's key).
    pub(crate) item_key: String,
}

/// The stored copy of `row`, if any: its `raw_json` and whether it is live (for staging, which
/// must know before it writes).
fn stored_copy(conn: &Connection, row: &Row) -> rusqlite::Result<Option<(String, bool)>> {
    let sql = statements::get(row.table, "lookup");
    let mut stmt = conn.prepare_cached(sql)?;
    bind::bind(&mut stmt, sql, row.record.as_ref(), &[], false)?;
    let mut rows = stmt.raw_query();
    match rows.next()? {
        Some(r) => Ok(Some((r.get(0)?, r.get(1)?))),
        None => Ok(None),
    }
}

/// True when the stored copy of `row` is identical and live.
pub(super) fn unchanged(conn: &Connection, row: &Row) -> rusqlite::Result<bool> {
    Ok(matches!(stored_copy(conn, row)?, Some((raw, true)) if raw == row.raw_json))
}

/// Inserts `row`, or updates the stored copy unless it is identical and live: an `insert` that
/// does nothing on conflict, then (only for a row already stored) an `update` whose `WHERE`
/// leaves an identical row alone. What each changed says which it was. (One upsert with
/// `RETURNING` would say so too, but makes SQLite keep a statement journal per row.) While a
/// keyless first load has the key set aside the `insert` always inserts.
pub(super) fn upsert(conn: &Connection, row: &Row, now: &str) -> rusqlite::Result<Counts> {
    let mut counts = Counts::default();
    if write(conn, row, "insert", now)? > 0 {
        counts.inserted = 1;
    } else if write(conn, row, "update", now)? > 0 {
        counts.updated = 1;
    } else {
        counts.unchanged = 1;
    }
    Ok(counts)
}

/// Runs the statement `name` of the row's table with the row bound; the rows it changed.
fn write(conn: &Connection, row: &Row, name: &str, now: &str) -> rusqlite::Result<usize> {
    let sql = statements::get(row.table, name);
    let mut stmt = conn.prepare_cached(sql)?;
    bind::bind(
        &mut stmt,
        sql,
        row.record.as_ref(),
        &[(":raw_json", &row.raw_json), (":now", &now)],
        true,
    )?;
    stmt.raw_execute()
}
