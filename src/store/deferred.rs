//! Indexes set aside while a first full load fills an empty table, and built once it is
//! complete.

use rusqlite::{Connection, TransactionBehavior};

use super::database::Store;
use super::error::Error;
use super::open::CACHE_KIB;
use super::statements;
use crate::time::{Timestamp, iso};

/// The page cache while deferred indexes are built: SQLite's sorter sizes its in-memory runs by
/// it, and a build's sort is sequential, so a small cache costs little time and keeps memory flat.
const SORT_CACHE_KIB: i64 = 1024;

/// Sorter threads for an index build (`PRAGMA threads`): the machine's second core.
const SORT_THREADS: i64 = 2;

/// What `Store::restore_indexes` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Indexes built.
    pub(crate) indexes: usize,
    /// Rows removed because a keyless first load had stored their id again later.
    pub(crate) folded: usize,
}

/// `(name, sql)` of the indexes the `deferred_indexes` statement `statement` lists for `table`:
/// those it may set aside (`of_table`) or those it has (`pending`).
fn index_definitions(
    c: &Connection,
    statement: &str,
    table: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    c.prepare(statements::get("deferred_indexes", statement))?
        .query_map(&[(":table", &table)], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Tables with indexes set aside, and how many each.
pub(super) fn deferred_tables(c: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    c.prepare(statements::get("deferred_indexes", "tables"))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// `Store::restore_indexes`'s transaction: every definition set aside for `table`, built, the
/// key first. A key whose build finds an id stored twice (a keyless load re-read it) has the
/// table's duplicates folded into their last listing, and is built again.
fn build_deferred(c: &mut Connection, table: &str) -> rusqlite::Result<Restored> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let pending = index_definitions(&tx, "pending", table)?;
    let key = format!("{table}_key");
    let mut folded = 0;
    for (name, sql) in &pending {
        match tx.execute(sql, []) {
            Err(e) if *name == key && is_unique_violation(&e) => {
                folded = dedupe(&tx, table)?;
                tx.execute(sql, [])?;
            }
            other => {
                other?;
            }
        }
    }
    tx.execute(
        statements::get("deferred_indexes", "forget"),
        &[(":table", &table)],
    )?;
    tx.commit()?;
    Ok(Restored {
        indexes: pending.len(),
        folded,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error().map(|f| f.extended_code),
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
    )
}

/// Folds each id `table` holds more than once into its last listing (`deferred_indexes.sql`,
/// "dedupe"); rows removed.
fn dedupe(tx: &Connection, table: &str) -> rusqlite::Result<usize> {
    let run = |name: &str| {
        let sql = statements::get("deferred_indexes", name).replace("{table}", table);
        tx.execute(&sql, [])
    };
    run("dedupe_index")?;
    run("dedupe_first_synced")?;
    let removed = run("dedupe")?;
    run("dedupe_index_drop")?;
    Ok(removed)
}

impl Store {
    /// Sets aside the secondary indexes of `table` for a first full load, if the table is empty:
    /// their definitions go to `deferred_indexes` and the indexes are dropped, in one
    /// transaction. An index on a key in random order costs a random B-tree write per row;
    /// rebuilt once at the end it is one sort (`sql/migrations/13-deferred-indexes`). With
    /// `keyless`, the table's key index (`<table>_key`, `sql/migrations/14-keyless-first-load`)
    /// goes too, and the load appends every listing: only for a table nothing looks up by key
    /// until the load completes (no per-parent stream reads it, no foreign key checks it).
    /// Returns how many were set aside.
    pub(crate) fn defer_indexes(&self, table: &str, keyless: bool, now: Timestamp) -> Result<usize, Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows: i64 = tx.query_row(statements::get(table, "count"), [], |r| r.get(0))?;
            if rows > 0 {
                return Ok(0);
            }
            let mut indexes = index_definitions(&tx, "of_table", table)?;
            if keyless {
                indexes.extend(index_definitions(&tx, "key_of_table", table)?);
            }
            for (name, sql) in &indexes {
                tx.execute(
                    statements::get("deferred_indexes", "remember"),
                    rusqlite::named_params! {":name": name, ":table": table, ":sql": sql, ":now": now},
                )?;
                let drop = statements::get("deferred_indexes", "drop")
                    .replace("{index}", &name.replace('"', "\"\""));
                tx.execute(&drop, [])?;
            }
            tx.commit()?;
            Ok(indexes.len())
        })
    }

    /// Whether a first load has set aside `table`'s key index: until it is rebuilt, an id may be
    /// stored more than once and a lookup by id scans the table.
    pub(crate) fn key_deferred(&self, table: &str) -> Result<bool, Error> {
        self.with(|c| {
            c.query_row(
                statements::get("deferred_indexes", "key_pending"),
                &[(":table", &table)],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
        })
    }

    /// Rebuilds the indexes `defer_indexes` set aside for `table`, in one transaction. A kill
    /// while it runs leaves them set aside, and the next run rebuilds them.
    pub(crate) fn restore_indexes(&self, table: &str) -> Result<Restored, Error> {
        self.with(|c| {
            // The index build sorts every key: in temporary files, not in memory (`open` keeps
            // temporary storage in memory for statement journals), or a million rows' keys
            // would triple the job's memory for the length of the sort. The sorter keeps as
            // much in memory as the page cache may hold: a small one for the build, so the peak
            // stays near the load's own.
            c.pragma_update(None, "temp_store", "FILE")?;
            c.pragma_update(None, "cache_size", -SORT_CACHE_KIB)?;
            c.execute_batch("PRAGMA shrink_memory")?;
            // Folding an id stored twice deletes the older copies, and SQLite refuses to delete
            // from a parent table (bookings, for its tickets and answers) whose key has no unique
            // index yet. Nothing can reference a copy: per-parent streams do not run while the
            // key is aside, and the id itself stays. The pragma cannot change inside the
            // transaction, so it is off around it.
            c.pragma_update(None, "foreign_keys", "OFF")?;
            // The load's own walk waits for the build (its catch-up pass follows it), so the
            // sorter may use the second core: a quarter less wall time at a million rows, for
            // a fifth more CPU and a worker's buffer of memory.
            c.pragma_update(None, "threads", SORT_THREADS)?;
            let built = build_deferred(c, table);
            c.pragma_update(None, "threads", 0)?;
            c.pragma_update(None, "foreign_keys", "ON")?;
            c.pragma_update(None, "cache_size", -CACHE_KIB)?;
            c.pragma_update(None, "temp_store", "MEMORY")?;
            built
        })
    }

    /// Tables with indexes set aside, and how many each.
    pub(crate) fn deferred_indexes(&self) -> Result<Vec<(String, i64)>, Error> {
        self.with(|c| deferred_tables(c))
    }
}
