//! `sync_runs`: one row per run, its live counts, and how it ended.

use crate::poison::Unpoisoned as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::TransactionBehavior;
use rusqlite::types::Value;

use super::database::Store;
use super::error::Error;
use super::open::open;
use super::statements;
use crate::counts::Counts;
use crate::time::{Timestamp, iso};

/// Named SQL parameters, e.g. `(":id", Value::Text(..))`, for the store's own tables.
pub(crate) type Params = Vec<(&'static str, Value)>;

/// The run in progress in this process and its database, so that a panic can close its row
/// (see [`fail_running_run`]); `None` between runs.
static RUNNING: Mutex<Option<(PathBuf, i64)>> = Mutex::new(None);

/// How long a panicking process waits for the database to record its run as failed: the
/// panicking thread may itself hold the write lock, which it never gives back.
const PANIC_WAIT: Duration = Duration::from_secs(2);

/// Records the run in progress in this process, if any, as `failed` with `error`; whether it
/// did. For the panic hook, which exits at once: without it the row would say `running` until
/// the next run. It opens a connection of its own (the panicking thread may hold the run's)
/// and gives up after `PANIC_WAIT`: a panic inside the writer's own transaction leaves the
/// row `running`, and `status` then says no process holds the database (`lock::holder_alive`)
/// until the next run marks it abandoned.
pub fn fail_running_run(error: &str) -> bool {
    let Some((path, id)) = RUNNING.try_lock().ok().and_then(|mut r| r.take()) else {
        return false;
    };
    let Ok(conn) = open(&path) else {
        return false;
    };
    let now = iso(chrono::Utc::now());
    conn.busy_timeout(PANIC_WAIT).is_ok()
        && conn
            .execute(
                statements::get("sync_runs", "fail"),
                rusqlite::named_params! {":id": id, ":now": now, ":error": error},
            )
            .is_ok_and(|n| n == 1)
}

impl Store {
    /// Records a new run; runs still marked running were killed and become `abandoned`.
    /// `watching`: it counts a webhook receiver's misses (`sync_runs.webhook_missed`).
    pub(crate) fn start_run(&self, now: Timestamp, watching: bool) -> Result<i64, Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(statements::get("sync_runs", "abandon"))?
                .execute(rusqlite::named_params! {":now": now})?;
            tx.prepare_cached(statements::get("sync_runs", "start"))?
                .execute(rusqlite::named_params! {":now": now, ":watching": watching})?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            self.run.store(id, std::sync::atomic::Ordering::Relaxed);
            *RUNNING.locked() = Some((self.path().to_owned(), id));
            Ok(id)
        })
    }

    pub(crate) fn finish_run(&self, id: i64, params: &Params, now: Timestamp) -> Result<(), Error> {
        let now = Value::Text(iso(now));
        let id = Value::Integer(id);
        self.with(|c| {
            let mut all: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":now", &now), (":id", &id)];
            all.extend(params.iter().map(|(k, v)| (*k, v as &dyn rusqlite::ToSql)));
            c.prepare_cached(statements::get("sync_runs", "finish"))?
                .execute(all.as_slice())?;
            Ok(())
        })?;
        self.run.store(0, std::sync::atomic::Ordering::Relaxed);
        RUNNING.locked().take();
        Ok(())
    }

    /// The running run's requests so far, for `status` while it runs (rows are counted by the
    /// commits themselves).
    pub(crate) fn record_requests(&self, id: i64, counts: &Counts) -> Result<(), Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("sync_runs", "requests"))?
                .execute(rusqlite::named_params! {
                    ":id": id,
                    ":requests": counts.requests as i64,
                    ":retries": counts.retries as i64,
                    ":rate_limited": counts.rate_limited as i64,
                })?;
            Ok(())
        })
    }

    /// When the last successful run ended, if any did.
    pub(crate) fn last_success(&self) -> Result<Option<String>, Error> {
        self.with(|c| c.query_row(statements::get("sync_runs", "last_success"), [], |r| r.get(0)))
    }
}
