//! `sync_runs`: one row per run, its live counts, and how it ended.

use rusqlite::TransactionBehavior;
use rusqlite::types::Value;

use super::database::Store;
use super::error::Error;
use super::statements;
use crate::counts::Counts;
use crate::time::{Timestamp, iso};

/// Named SQL parameters, e.g. `(":id", Value::Text(..))`, for the store's own tables.
pub type Params = Vec<(&'static str, Value)>;

impl Store {
    /// Records a new run; runs still marked running were killed and become `abandoned`.
    pub fn start_run(&self, now: Timestamp) -> Result<i64, Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(statements::get("sync_runs", "abandon"))?
                .execute(rusqlite::named_params! {":now": now})?;
            tx.prepare_cached(statements::get("sync_runs", "start"))?
                .execute(rusqlite::named_params! {":now": now})?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            self.run.store(id, std::sync::atomic::Ordering::Relaxed);
            Ok(id)
        })
    }

    pub fn finish_run(&self, id: i64, params: &Params, now: Timestamp) -> Result<(), Error> {
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
        Ok(())
    }

    /// The running run's requests so far, for `status` while it runs (rows are counted by the
    /// commits themselves).
    pub fn record_requests(&self, id: i64, counts: &Counts) -> Result<(), Error> {
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
    pub fn last_success(&self) -> Result<Option<String>, Error> {
        self.with(|c| c.query_row(statements::get("sync_runs", "last_success"), [], |r| r.get(0)))
    }
}
