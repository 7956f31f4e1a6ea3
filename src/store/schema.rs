//! The schema this version creates, read off a database migrated in memory: what the data
//! dictionary and the Datasette metadata must describe, known without touching any file.

use std::path::Path;

use rusqlite::Connection;

use super::error::Error;
use super::open::MIGRATIONS;
use super::statements;

/// A table or view and its columns, in the order SQLite lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relation {
    pub(crate) name: String,
    pub(crate) is_view: bool,
    pub(crate) columns: Vec<String>,
}

/// Every table and view of a database at the latest migration, by name; SQLite's own
/// (`sqlite_sequence`) left out.
pub(crate) fn latest() -> Result<Vec<Relation>, Error> {
    let here = Path::new(":memory:");
    let fail = |e: rusqlite::Error| super::open::classify(here, e);
    let mut conn = Connection::open_in_memory().map_err(fail)?;
    let migrations = MIGRATIONS.as_ref().map_err(|m| Error::Migration {
        path: here.to_owned(),
        message: m.clone(),
    })?;
    migrations.to_latest(&mut conn).map_err(|e| Error::Migration {
        path: here.to_owned(),
        message: e.to_string(),
    })?;
    relations(&conn).map_err(fail)
}

/// The tables and views of `conn`, with their columns.
pub(crate) fn relations(conn: &Connection) -> rusqlite::Result<Vec<Relation>> {
    let mut stmt = conn.prepare(statements::get("sqlite_schema", "relations"))?;
    let named: Vec<(String, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut columns = conn.prepare(statements::get("sqlite_schema", "columns"))?;
    named
        .into_iter()
        .map(|(name, is_view)| {
            let cols = columns
                .query_map([&name], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(Relation {
                name,
                is_view,
                columns: cols,
            })
        })
        .collect()
}
