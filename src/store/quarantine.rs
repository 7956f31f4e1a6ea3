//! `quarantine`, items the job could not read, and the rows a complete scan missed.

use super::database::Store;
use super::error::Error;
use super::statements;
use crate::time::{Timestamp, iso};

/// Whether `table` counts the complete scans that missed a row it cannot ask about by id
/// (legacy consents): such a row goes at two misses in a row.
pub(crate) fn counts_misses(table: &str) -> bool {
    statements::has(table, "missed")
}

impl Store {
    /// After a complete scan of `stream`: its live rows the scan did not list, as (key, id).
    pub(crate) fn removal_candidates(&self, stream: &str) -> Result<Vec<(String, Option<String>)>, Error> {
        self.with(|c| {
            c.prepare_cached(statements::get(stream, "removal_candidates"))?
                .query_map(&[(":stream", stream)], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    /// Ids of at most `limit` of the stream's quarantined items to fetch again, those asked for
    /// longest ago first, so that bounded runs take turns through all of them.
    pub(crate) fn quarantined_ids(&self, stream: &str, limit: usize) -> Result<Vec<String>, Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("quarantine", "ids"))?
                .query_map(
                    rusqlite::named_params! {":stream": stream, ":limit": limit as i64},
                    |r| r.get(0),
                )?
                .collect()
        })
    }

    /// Notes that a quarantined item was asked for by id at `now`.
    pub(crate) fn quarantine_retried(&self, stream: &str, id: &str, now: Timestamp) -> Result<(), Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("quarantine", "retried"))?
                .execute(rusqlite::named_params! {":stream": stream, ":item_id": id, ":now": iso(now)})?;
            Ok(())
        })
    }

    /// Takes an item out of quarantine (the API no longer has it).
    pub(crate) fn release_quarantine(&self, stream: &str, key: &str) -> Result<(), Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("quarantine", "release"))?
                .execute(rusqlite::named_params! {":stream": stream, ":item_key": key})?;
            Ok(())
        })
    }

    /// Items in quarantine now, over all streams.
    pub(crate) fn quarantine_count(&self) -> Result<u64, Error> {
        self.with(|c| {
            c.query_row(statements::get("quarantine", "count"), [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        })
    }
}
