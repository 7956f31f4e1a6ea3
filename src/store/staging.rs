//! `staging`: parents waiting for their per-parent lists, read by the fan-out.

use rusqlite::TransactionBehavior;

use super::checkpoint::{self, Checkpoint};
use super::database::Store;
use super::error::Error;
use super::statements;
use crate::time::{Timestamp, iso};

impl Store {
    /// Up to `limit` staged parents of `stream`, oldest first, leaving out those in `busy`.
    pub(crate) fn staged(
        &self,
        stream: &str,
        busy: &[String],
        limit: usize,
    ) -> Result<Vec<(String, String)>, Error> {
        let busy = serde_json::to_string(busy).unwrap_or_else(|_| "[]".into());
        self.with(|c| {
            c.prepare_cached(statements::get("staging", "next"))?
                .query_map(
                    rusqlite::named_params! {":stream": stream, ":busy": busy, ":limit": limit as i64},
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .collect()
        })
    }

    /// Stages every stored `parent` row for a newly enabled per-parent stream `child`, once:
    /// `None` when the child has been set up before, else how many parents were staged.
    pub(crate) fn backfill(&self, parent: &str, child: &str, now: Timestamp) -> Result<Option<u64>, Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let known = tx
                .prepare_cached(statements::get("sync_state", "exists"))?
                .exists(rusqlite::named_params! {":stream": child})?;
            if known {
                return Ok(None);
            }
            let n = tx
                .prepare_cached(statements::get(parent, "stage_all"))?
                .execute(rusqlite::named_params! {":stream": parent, ":now": now})?;
            let done = Checkpoint {
                completed: true,
                ..Checkpoint::default()
            };
            checkpoint::save(&tx, child, &done, &now)?;
            tx.commit()?;
            Ok(Some(n as u64))
        })
    }

    /// Parents of `stream` waiting in `staging`.
    pub(crate) fn staged_count(&self, stream: &str) -> Result<u64, Error> {
        self.with(|c| {
            c.query_row(statements::get("staging", "count"), &[(":stream", stream)], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
        })
    }

    /// Drops a staged parent the API no longer has.
    pub(crate) fn unstage(&self, stream: &str, key: &str) -> Result<(), Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("staging", "drop"))?
                .execute(rusqlite::named_params! {":stream": stream, ":item_key": key})?;
            Ok(())
        })
    }
}
