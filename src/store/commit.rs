//! The one write that matters: a page's rows together with the stream's checkpoint (and
//! its staging, quarantine and removals), in one transaction.

use rusqlite::{Connection, TransactionBehavior};

use super::checkpoint::{self, Checkpoint};
use super::database::Store;
use super::error::Error;
use super::quarantine::counts_misses;
use super::statements;
use super::upsert::{Row, unchanged, upsert};
use crate::counts::Counts;
use crate::time::{Timestamp, iso};

/// How to remove a parent's listed items that the API no longer lists.
#[derive(Debug, Clone)]
pub enum Prune {
    /// Items without ids (line items): positions at or beyond this count.
    BeyondPosition(i64),
    /// Items with ids: ids not in this list.
    NotIn(Vec<String>),
}

/// One parent's whole list of one per-parent stream, replacing what is stored for it.
#[derive(Debug)]
pub struct Children {
    pub table: &'static str,
    pub parent_id: String,
    pub rows: Vec<Row>,
    pub prune: Prune,
    /// Items of the list that could not be read.
    pub quarantined: Vec<Quarantined>,
}

/// An item the job could not read, kept in `quarantine` until it reads.
#[derive(Debug, Clone)]
pub struct Quarantined {
    /// The stream, or the sub-resource table.
    pub stream: &'static str,
    /// Its id, or a fingerprint of its JSON.
    pub key: String,
    pub id: Option<String>,
    pub parent_id: Option<String>,
    pub error: String,
    pub raw_json: String,
}

/// Everything one page writes, in one transaction.
#[derive(Debug, Default)]
pub struct Commit {
    pub stream: &'static str,
    pub rows: Vec<Row>,
    pub children: Vec<Children>,
    /// The stream's checkpoint after this page; `None` leaves it as it is.
    pub checkpoint: Option<Checkpoint>,
    pub removals: Option<Removals>,
    pub quarantined: Vec<Quarantined>,
    /// A scan's first page: forget what the stream's previous scan listed.
    pub reset_seen: bool,
    /// Keys a scan listed on this page, remembered in `scan_seen`.
    pub seen: Vec<String>,
    /// After a complete scan: quarantined items of the stream not seen since then are dropped.
    pub sweep_quarantine_before: Option<Timestamp>,
    /// Parents to stage for the fan-out instead of writing: each one that differs from what is
    /// stored waits in `staging`; an identical one only counts as unchanged.
    pub stage: Vec<Row>,
    /// A staged parent now written with its children: it leaves `staging` (if not re-listed since).
    pub unstage: Option<Staged>,
    /// For a stream with webhook events, while a receiver has been up since the last successful
    /// listing: that listing's start. A row this commit inserts or changes (or stages) changed
    /// after it, while the receiver was up; with no delivery about it since then, it is counted
    /// in `Counts::webhook_missed`: a miss of the webhook path that this listing caught.
    pub watch_since: Option<String>,
    /// A webhook delivery this commit applies, marked done in its transaction (the applier's).
    pub delivery: Option<super::inbox::Delivered>,
    /// The bytes of the run's memory budget its rows were read from: given back when the
    /// writer drops the commit, once it is written.
    pub held: crate::memory::Held,
}

/// A parent as it waits in `staging`.
#[derive(Debug, Clone)]
pub struct Staged {
    pub item_key: String,
    pub raw_json: String,
}

impl Commit {
    /// Rows it writes, for sizing a group.
    pub(crate) fn size(&self) -> usize {
        self.rows.len()
            + self.stage.len()
            + self.seen.len()
            + self.children.iter().map(|c| c.rows.len()).sum::<usize>()
            + 1
    }
}

/// What a commit wrote: its counts, and the items quarantined for the first time.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// The commit's own stream: its rows, the parents it staged for the fan-out, and the items
    /// it (or a per-parent list written with it) quarantined for the first time.
    pub(crate) counts: Counts,
    /// Rows of each per-parent stream written with it (a fan-out commit), by table.
    pub(crate) children: Vec<(&'static str, Counts)>,
    pub(crate) newly_quarantined: Vec<Quarantined>,
}

/// What a complete scan decided about the live rows it did not list.
#[derive(Debug, Clone)]
pub struct Removals {
    pub(crate) table: &'static str,
    /// Rows the API confirmed gone (`GET …/{id}` answered 404).
    pub(crate) confirmed: Vec<String>,
    /// Rows with no id to ask about (legacy consents): one more miss; removed at two.
    pub(crate) missed: Vec<String>,
}

impl Committed {
    /// Every row the commit wrote, its per-parent streams' included.
    pub(crate) fn total(&self) -> Counts {
        std::iter::once(self.counts)
            .chain(self.children.iter().map(|(_, c)| *c))
            .sum()
    }
}

impl Store {
    /// Writes commits in one transaction, in order: each page's rows, their sub-resources, its
    /// quarantined items, (at the end of a complete scan) its removals, and last the stream's
    /// checkpoint. All or nothing: a page and the cursor that follows it are both stored, or
    /// neither is, so a kill at any instant loses and repeats nothing; a kill loses at most the
    /// whole group, which the next run fetches again from the last checkpoint that landed. Many
    /// commits in one transaction write fewer WAL frames (an index page touched by every commit
    /// is written once) and sync once.
    pub(crate) fn commit_group(&self, commits: &[Commit], now: Timestamp) -> Result<Vec<Committed>, Error> {
        let now = iso(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut all = Vec::with_capacity(commits.len());
            let mut group = Counts::default();
            for commit in commits {
                let committed = self.apply(&tx, commit, &now)?;
                group += committed.total();
                all.push(committed);
            }
            // The running run's row counts what landed, in the same transaction: `status`
            // shows it live, and a run killed mid-way leaves exactly what it committed.
            let run = self.run.load(std::sync::atomic::Ordering::Relaxed);
            if run != 0 && (group.changes() != Counts::default().changes() || group.webhook_missed > 0) {
                tx.prepare_cached(statements::get("sync_runs", "committed"))?
                    .execute(rusqlite::named_params! {
                        ":id": run,
                        ":inserted": group.inserted as i64,
                        ":updated": group.updated as i64,
                        ":unchanged": group.unchanged as i64,
                        ":removed": group.removed as i64,
                        ":webhook_missed": group.webhook_missed as i64,
                    })?;
            }
            tx.commit()?;
            Ok(all)
        })
    }

    /// One commit's writes inside the caller's transaction.
    fn apply(&self, tx: &Connection, commit: &Commit, now: &str) -> rusqlite::Result<Committed> {
        let mut out = Committed::default();
        if let Some(d) = &commit.delivery
            && let Some((key, fetched)) = &d.fetched
            && super::inbox::stored_is_newer(tx, commit.stream, key, *fetched)?
        {
            super::inbox::mark_applied(tx, d.seq, super::inbox::Outcome::Stale, d.lag_ms, now)?;
            return Ok(out);
        }
        if let Some(row) = &commit.unstage
            && !take_staged(tx, commit.stream, row)?
        {
            return Ok(out);
        }
        let quarantine_in_use = self.quarantine_in_use.load(std::sync::atomic::Ordering::Relaxed);
        write_rows(tx, commit, now, quarantine_in_use, &mut out)?;
        for set in &commit.children {
            let counts = write_children(tx, set, now, quarantine_in_use)?;
            match out.children.iter_mut().find(|(t, _)| *t == set.table) {
                Some((_, c)) => *c += counts,
                None => out.children.push((set.table, counts)),
            }
        }
        self.write_quarantined(tx, commit, now, &mut out)?;
        write_scan(tx, commit, quarantine_in_use)?;
        if let Some(r) = &commit.removals {
            out.counts.removed += write_removals(tx, commit.stream, r, now)?;
            // A removal the listing confirmed is a change too: a dropped `deleted` event.
            if let Some(by) = &commit.watch_since {
                for key in &r.confirmed {
                    out.counts.webhook_missed +=
                        u64::from(!super::inbox::delivered_since(tx, commit.stream, key, by)?);
                }
            }
        }
        if let Some(cp) = &commit.checkpoint {
            checkpoint::save(tx, commit.stream, cp, now)?;
        }
        if let Some(d) = &commit.delivery {
            let total = out.total();
            let outcome = d
                .outcome
                .unwrap_or(if total.inserted + total.updated + total.removed > 0 {
                    super::inbox::Outcome::Stored
                } else {
                    super::inbox::Outcome::Unchanged
                });
            super::inbox::mark_applied(tx, d.seq, outcome, d.lag_ms, now)?;
        }
        Ok(out)
    }

    /// The commit's quarantined items, its own and its children's; an unreadable listing of a
    /// parent supersedes an older one waiting in `staging` for its lists.
    fn write_quarantined(
        &self,
        tx: &Connection,
        commit: &Commit,
        now: &str,
        out: &mut Committed,
    ) -> rusqlite::Result<()> {
        let all = commit
            .quarantined
            .iter()
            .chain(commit.children.iter().flat_map(|c| &c.quarantined));
        for q in all {
            let seen = tx
                .prepare_cached(statements::get("quarantine", "exists"))?
                .exists(rusqlite::named_params! {":stream": q.stream, ":item_key": q.key})?;
            tx.prepare_cached(statements::get("quarantine", "upsert"))?
                .execute(rusqlite::named_params! {
                    ":stream": q.stream,
                    ":item_key": q.key,
                    ":item_id": q.id,
                    ":parent_id": q.parent_id,
                    ":error": q.error,
                    ":raw_json": q.raw_json,
                    ":now": now,
                })?;
            if !seen {
                out.counts.quarantined += 1;
                out.newly_quarantined.push(q.clone());
            }
            if q.parent_id.is_none() && q.stream == commit.stream {
                tx.prepare_cached(statements::get("staging", "drop"))?
                    .execute(rusqlite::named_params! {":stream": commit.stream, ":item_key": q.key})?;
            }
            self.quarantine_in_use
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Takes a fan-out commit's parent listing out of `staging`: false if it no longer waits there. A
/// newer listing staged meanwhile is written in its own turn; one the walk could not read
/// dropped it, and the older copy must then neither overwrite the stored row nor release the
/// newer one from quarantine.
fn take_staged(tx: &Connection, stream: &str, row: &Staged) -> rusqlite::Result<bool> {
    let taken = tx
        .prepare_cached(statements::get("staging", "done"))?
        .execute(rusqlite::named_params! {
            ":stream": stream,
            ":item_key": row.item_key,
            ":raw_json": row.raw_json,
        })?;
    Ok(taken > 0)
}

/// The commit's own rows (each releasing its quarantine entry, if any) and the parents it
/// stages for the fan-out.
fn write_rows(
    tx: &Connection,
    commit: &Commit,
    now: &str,
    quarantine_in_use: bool,
    out: &mut Committed,
) -> rusqlite::Result<()> {
    for row in &commit.rows {
        let counts = upsert(tx, row, now)?;
        if counts.unchanged == 0 {
            out.counts.webhook_missed += missed_by_webhook(tx, commit, row)?;
        }
        out.counts += counts;
        if quarantine_in_use {
            tx.prepare_cached(statements::get("quarantine", "release"))?
                .execute(rusqlite::named_params! {":stream": commit.stream, ":item_key": row.item_key})?;
        }
    }
    for row in &commit.stage {
        if unchanged(tx, row)? {
            out.counts.unchanged += 1;
        } else {
            tx.prepare_cached(statements::get("staging", "stage"))?
                .execute(rusqlite::named_params! {
                    ":stream": commit.stream,
                    ":item_key": row.item_key,
                    ":raw_json": row.raw_json,
                    ":now": now,
                })?;
            out.counts.staged += 1;
            out.counts.webhook_missed += missed_by_webhook(tx, commit, row)?;
        }
    }
    Ok(())
}

/// 1 when `row`, just changed by a listing, is one a webhook delivery should have brought and
/// none did (see `Commit::watch`).
fn missed_by_webhook(tx: &Connection, commit: &Commit, row: &Row) -> rusqlite::Result<u64> {
    let Some(by) = &commit.watch_since else {
        return Ok(0);
    };
    let delivered = super::inbox::delivered_since(tx, commit.stream, &row.item_key, by)?;
    Ok(u64::from(!delivered))
}

/// One parent's whole list of one per-parent stream: its rows, what it no longer lists pruned,
/// and what was unreadable in its previous list judged anew.
fn write_children(
    tx: &Connection,
    set: &Children,
    now: &str,
    quarantine_in_use: bool,
) -> rusqlite::Result<Counts> {
    let mut counts = Counts::default();
    for row in &set.rows {
        counts += upsert(tx, row, now)?;
    }
    let sql = statements::get(set.table, "prune");
    let pruned = match &set.prune {
        Prune::BeyondPosition(n) => tx
            .prepare_cached(sql)?
            .execute(rusqlite::named_params! {":parent_id": set.parent_id, ":count": n})?,
        Prune::NotIn(ids) => {
            let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
            tx.prepare_cached(sql)?
                .execute(rusqlite::named_params! {":parent_id": set.parent_id, ":ids": ids})?
        }
    };
    counts.removed += pruned as u64;
    if quarantine_in_use {
        tx.prepare_cached(statements::get("quarantine", "release_children"))?
            .execute(rusqlite::named_params! {
                ":stream": set.table,
                ":parent_id": set.parent_id,
            })?;
    }
    Ok(counts)
}

/// A scan's bookkeeping: what it listed (`scan_seen`), and after a complete scan the
/// quarantined items it no longer listed.
fn write_scan(tx: &Connection, commit: &Commit, quarantine_in_use: bool) -> rusqlite::Result<()> {
    let stream = commit.stream;
    if let Some(since) = commit.sweep_quarantine_before
        && quarantine_in_use
    {
        tx.prepare_cached(statements::get("quarantine", "sweep"))?
            .execute(rusqlite::named_params! {":stream": stream, ":since": iso(since)})?;
    }
    if commit.reset_seen {
        tx.prepare_cached(statements::get("scan_seen", "reset"))?
            .execute(rusqlite::named_params! {":stream": stream})?;
    }
    if !commit.seen.is_empty() {
        let mut add = tx.prepare_cached(statements::get("scan_seen", "add"))?;
        for key in &commit.seen {
            add.execute(rusqlite::named_params! {":stream": stream, ":item_key": key})?;
        }
    }
    Ok(())
}

/// A complete scan's removals: rows confirmed gone, and (in tables that count them) rows
/// without an id it missed, removed at two misses in a row. Returns the rows removed.
fn write_removals(tx: &Connection, stream: &str, r: &Removals, now: &str) -> rusqlite::Result<u64> {
    let table = r.table;
    let json = |keys: &[String]| serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
    let mut removed =
        tx.prepare_cached(statements::get(table, "confirm_removed"))?
            .execute(rusqlite::named_params! {":now": now, ":keys": json(&r.confirmed)})? as u64;
    if counts_misses(table) {
        tx.prepare_cached(statements::get(table, "seen_again"))?
            .execute(rusqlite::named_params! {":stream": stream})?;
        tx.prepare_cached(statements::get(table, "missed"))?
            .execute(rusqlite::named_params! {":keys": json(&r.missed)})?;
        removed +=
            tx.prepare_cached(statements::get(table, "missed_twice"))?
                .execute(rusqlite::named_params! {":now": now, ":keys": json(&r.missed)})? as u64;
    }
    Ok(removed)
}
