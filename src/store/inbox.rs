//! `webhook_inbox` and `webhook_state`: deliveries the receiver committed before answering, the
//! applier's progress through them, and the receiver's counters.

use rusqlite::OptionalExtension;

use super::database::Store;
use super::error::Error;
use super::statements;
use crate::time::{Timestamp, iso};

/// A verified delivery, as the receiver records it.
#[derive(Debug, Clone)]
pub struct Received<'a> {
    pub webhook_id: &'a str,
    pub event_type: &'a str,
    /// The enabled stream its type belongs to; `None`: nothing here stores it.
    pub stream: Option<&'static str>,
    pub item_id: Option<&'a str>,
    pub event_timestamp: Option<&'a str>,
    pub body: &'a str,
}

/// A delivery waiting for the applier.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub seq: i64,
    pub(crate) webhook_id: String,
    pub(crate) event_type: String,
    pub(crate) stream: Option<String>,
    pub(crate) item_id: Option<String>,
    pub(crate) event_timestamp: Option<String>,
    /// Tries so far that failed (the API refused or was unreachable).
    pub(crate) attempts: u32,
}

/// A delivery a commit applies: marked done in the commit's own transaction, so an item is
/// stored and its delivery marked together, or neither (a kill between the two would apply it
/// again).
#[derive(Debug, Clone)]
pub struct Delivered {
    pub(crate) seq: i64,
    /// Its outcome when the commit's writes do not say it (removed, quarantined); `None`:
    /// `stored` when the commit inserted or changed a row, else `unchanged`.
    pub(crate) outcome: Option<Outcome>,
    /// From its event's timestamp to now.
    pub(crate) lag_ms: Option<i64>,
    /// The fetched item's key and `updated_at`: when the stored row's is later, the commit
    /// writes nothing and the outcome is `stale` (an answer from behind a replica, or the
    /// listing stored a newer copy meanwhile). Checked in the transaction, so no write lands
    /// between the check and the write.
    pub(crate) fetched: Option<(String, Timestamp)>,
}

/// What applying a delivery did, as `webhook_inbox.outcome` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The item was fetched and its row inserted or changed.
    Stored,
    /// The item was fetched and its row already held it (a duplicate, or the listing was first).
    Unchanged,
    /// The item was gone after a removing event: its row is marked removed.
    Removed,
    /// The API no longer has the item and nothing is marked (not a removing event, or a table
    /// without removals).
    Gone,
    /// The API answered with an item older than the stored row (delivered out of order behind a
    /// replica, say): nothing changed.
    Stale,
    /// The item did not read: it is in quarantine, as a listed one would be.
    Quarantined,
    /// No enabled stream stores this type, or the event names no item.
    Ignored,
    /// The item could not be fetched: the API refused it for good, or failed every try. Its
    /// last error is kept; the next listing sync brings the item (and counts it as missed).
    Failed,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Unchanged => "unchanged",
            Self::Removed => "removed",
            Self::Gone => "gone",
            Self::Stale => "stale",
            Self::Quarantined => "quarantined",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }
}

/// The webhook path's health, for `status` and the metrics.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WebhookHealth {
    pub received: i64,
    pub applied: i64,
    /// Applied deliveries whose item could not be fetched (left to the listing sync).
    pub failed: i64,
    /// Deliveries waiting for the applier.
    pub waiting: i64,
    /// When the oldest waiting one arrived.
    pub oldest_waiting_at: Option<String>,
    pub duplicates: i64,
    pub refused: i64,
    pub receiving_since: Option<String>,
    pub stopped_at: Option<String>,
    pub last_applied_at: Option<String>,
    /// From the event's timestamp to its item committed, for the last one applied.
    pub last_lag_ms: Option<i64>,
    /// Rows the last listing sync with the receiver up had to insert or change that a delivery
    /// should have brought: the reconciliation's finding.
    pub last_run_missed: Option<i64>,
    /// The same, over every listing sync since the receiver started.
    pub missed_since_start: Option<i64>,
    /// Whether a receiver ever ran on this database.
    pub(crate) ever_ran: bool,
}

impl Store {
    /// Records a verified delivery; false when its `webhook-id` was already recorded (counted as
    /// a duplicate in the same transaction).
    pub(crate) fn receive(&self, r: &Received<'_>, now: Timestamp) -> Result<bool, Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let added = tx
                .prepare_cached(statements::get("webhook_inbox", "receive"))?
                .execute(rusqlite::named_params! {
                    ":webhook_id": r.webhook_id,
                    ":event_type": r.event_type,
                    ":stream": r.stream,
                    ":item_id": r.item_id,
                    ":event_timestamp": r.event_timestamp,
                    ":now": now,
                    ":body": r.body,
                })?
                > 0;
            if !added {
                tx.prepare_cached(statements::get("webhook_inbox", "count_duplicate"))?
                    .execute([])?;
            }
            tx.commit()?;
            Ok(added)
        })
    }

    /// Adds deliveries the receiver refused (kept in memory, written now and then, so a flood of
    /// bad requests is not a flood of writes).
    pub(crate) fn add_refused(&self, refused: u64) -> Result<(), Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("webhook_inbox", "add_refused"))?
                .execute(rusqlite::named_params! {":refused": refused as i64})?;
            Ok(())
        })
    }

    /// The receiver started (`true`) or stopped cleanly (`false`).
    pub(crate) fn receiving(&self, up: bool, now: Timestamp) -> Result<(), Error> {
        let name = if up { "started" } else { "stopped" };
        self.with(|c| {
            c.prepare_cached(statements::get("webhook_inbox", name))?
                .execute(rusqlite::named_params! {":now": iso(now)})?;
            Ok(())
        })
    }

    /// What a listing sync counts a webhook's misses from (see `Commit::watch_since`): the start
    /// of the last successful listing, when a receiver has been up since before it.
    pub(crate) fn webhook_watch_since(&self) -> Result<Option<Timestamp>, Error> {
        self.with(|c| {
            c.query_row(statements::get("webhook_inbox", "watch_since"), [], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
        })
        .map(|t| t.flatten().and_then(|t| crate::time::from_iso(&t)))
    }

    /// The oldest deliveries waiting, at most `limit`.
    pub(crate) fn waiting(&self, limit: usize) -> Result<Vec<Waiting>, Error> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(statements::get("webhook_inbox", "waiting"))?;
            let rows = stmt.query_map(rusqlite::named_params! {":limit": limit as i64}, |r| {
                Ok(Waiting {
                    seq: r.get(0)?,
                    webhook_id: r.get(1)?,
                    event_type: r.get(2)?,
                    stream: r.get(3)?,
                    item_id: r.get(4)?,
                    event_timestamp: r.get(5)?,
                    attempts: r.get::<_, i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
                })
            })?;
            rows.collect()
        })
    }

    /// Marks a delivery applied, with the lag from its event to now when known.
    pub(crate) fn applied(
        &self,
        seq: i64,
        outcome: Outcome,
        lag_ms: Option<i64>,
        now: Timestamp,
    ) -> Result<(), Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction()?;
            tx.prepare_cached(statements::get("webhook_inbox", "applied"))?
                .execute(rusqlite::named_params! {":seq": seq, ":outcome": outcome.as_str(), ":now": now})?;
            if let Some(lag) = lag_ms {
                tx.prepare_cached(statements::get("webhook_inbox", "lag"))?
                    .execute(rusqlite::named_params! {":now": now, ":lag_ms": lag})?;
            }
            tx.commit()
        })
    }

    /// A try that failed: the delivery stays waiting, its error kept for `status`; or, with
    /// `give_up`, it is done with [`Outcome::Failed`], its error kept.
    pub(crate) fn apply_failed(
        &self,
        seq: i64,
        error: &str,
        give_up: bool,
        now: Timestamp,
    ) -> Result<(), Error> {
        if give_up {
            let now = iso(now);
            return self.with(|c| {
                c.prepare_cached(statements::get("webhook_inbox", "gave_up"))?
                    .execute(rusqlite::named_params! {
                        ":seq": seq,
                        ":error": error,
                        ":outcome": Outcome::Failed.as_str(),
                        ":now": now,
                    })?;
                Ok(())
            });
        }
        self.with(|c| {
            c.prepare_cached(statements::get("webhook_inbox", "failed"))?
                .execute(rusqlite::named_params! {":seq": seq, ":error": error})?;
            Ok(())
        })
    }

    /// Deletes applied deliveries older than `before`; how many.
    pub(crate) fn prune_inbox(&self, before: Timestamp) -> Result<usize, Error> {
        self.with(|c| {
            c.prepare_cached(statements::get("webhook_inbox", "prune"))?
                .execute(rusqlite::named_params! {":before": iso(before)})
        })
    }

    /// The webhook path's health (all zero on a database that never received one).
    pub fn webhook_health(&self) -> Result<WebhookHealth, Error> {
        self.with(|c| webhook_health_of(c))
    }
}

/// [`Store::webhook_health`] on any connection (`status` reads a read-only one).
pub(super) fn webhook_health_of(c: &rusqlite::Connection) -> rusqlite::Result<WebhookHealth> {
    c.query_row(statements::get("webhook_inbox", "status"), [], |r| {
        Ok(WebhookHealth {
            received: r.get(0)?,
            applied: r.get(1)?,
            waiting: r.get(2)?,
            oldest_waiting_at: r.get(3)?,
            duplicates: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
            refused: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
            receiving_since: r.get(6)?,
            stopped_at: r.get(7)?,
            last_applied_at: r.get(8)?,
            last_lag_ms: r.get(9)?,
            last_run_missed: r.get(10)?,
            missed_since_start: r.get(11)?,
            ever_ran: r.get(12)?,
            failed: r.get(13)?,
        })
    })
}

/// Whether a delivery about item `item_id` of `stream` arrived at or after `since`.
pub(super) fn delivered_since(
    c: &rusqlite::Connection,
    stream: &str,
    item_id: &str,
    since: &str,
) -> rusqlite::Result<bool> {
    c.prepare_cached(statements::get("webhook_inbox", "delivered_since"))?
        .exists(rusqlite::named_params! {":stream": stream, ":item_id": item_id, ":since": since})
}

/// Whether the row `key` of `table` holds a later `updated_at` than `fetched`.
pub(super) fn stored_is_newer(
    c: &rusqlite::Connection,
    table: &str,
    key: &str,
    fetched: Timestamp,
) -> rusqlite::Result<bool> {
    let stored: Option<String> = c
        .prepare_cached(statements::get(table, "updated_at"))?
        .query_row(rusqlite::named_params! {":id": key}, |r| r.get(0))
        .optional()?
        .flatten();
    Ok(stored
        .as_deref()
        .and_then(crate::time::from_iso)
        .is_some_and(|s| s > fetched))
}

/// Marks a delivery applied, with its lag, inside the caller's transaction.
pub(super) fn mark_applied(
    c: &rusqlite::Connection,
    seq: i64,
    outcome: Outcome,
    lag_ms: Option<i64>,
    now: &str,
) -> rusqlite::Result<()> {
    c.prepare_cached(statements::get("webhook_inbox", "applied"))?
        .execute(rusqlite::named_params! {":seq": seq, ":outcome": outcome.as_str(), ":now": now})?;
    if let Some(lag) = lag_ms {
        c.prepare_cached(statements::get("webhook_inbox", "lag"))?
            .execute(rusqlite::named_params! {":now": now, ":lag_ms": lag})?;
    }
    Ok(())
}
