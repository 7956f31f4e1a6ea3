//! One stream's list walk as a state machine: which page to ask for next, what to commit with
//! each page, and what follows a completed pass. It does no I/O, so each transition has a name
//! and a unit test; `super::pages` only fetches, commits and logs what this decides.
//!
//! Terms (see `pass`): a *pass* is one walk of the list; its *candidate* is the
//! high-water mark it adopts on completion; the *floor* is the high-water mark minus the
//! overlap, below which an incremental pass stops.

use std::time::Duration;

mod horizon;
mod pass;

pub(crate) use horizon::Horizon;
pub(crate) use pass::{Pass, PassKind, first_load};
use pass::{new_pass, restart};

use crate::api::{Followed, ListQuery, Order};
use crate::store::Checkpoint;
use crate::streams::{Item, Mode};
use crate::time::Timestamp;

/// How the walk began, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// A new pass from the top.
    Fresh,
    /// An interrupted pass goes on from its checkpointed cursor.
    Resumed { pages_done: i64 },
    /// An interrupted pass whose cursor is too old restarts (bootstrap: from its progress).
    StaleCursor,
}

/// What to commit with a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageCommit {
    /// The stream's checkpoint after this page.
    pub(crate) checkpoint: Checkpoint,
    /// The first page of a whole scan: forget what the previous scan listed.
    pub(crate) reset_seen: bool,
    /// The page completes a scan: quarantined items not listed since the scan began go.
    pub(crate) sweep_quarantine_before: Option<Timestamp>,
    /// The page completes the pass.
    pub(crate) done: bool,
    /// Items on the page whose stamp that steers the pass is beyond the horizon (see
    /// [`Walk::page`]): stored, never a mark.
    pub(crate) future_dated: u64,
    /// The high-water mark, beyond the horizon, that this pass (from this page on) repairs.
    pub(crate) repair_began: Option<Timestamp>,
}

/// What the walk does after a page's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Fetch the next page (`query` says which).
    Fetch,
    /// A bootstrap completed: an incremental pass follows at once for rows updated behind it.
    CatchUp,
    /// A scan resumed after a crash completed: a whole scan follows, which can vouch for removals.
    Rescan,
    /// A whole scan completed: confirm its removal candidates, then stop.
    ConfirmRemovals,
    /// The pass completed.
    Done,
}

/// What the walk is told from `[sync]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// A checkpointed cursor older than this is not used to resume.
    pub(crate) cursor_ttl: Duration,
    /// How far below the high-water mark an incremental pass keeps reading.
    pub(crate) overlap: Duration,
    /// How far ahead of the clocks a timestamp may be and still steer the walk.
    pub(crate) max_skew: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct Walk {
    mode: Mode,
    overlap: chrono::Duration,
    horizon: Horizon,
    /// The checkpoint's high-water mark was beyond our clock's horizon when the walk began: it
    /// is judged again, with the API's clock, on the walk's first page.
    suspect: Option<Timestamp>,
    /// The high-water mark was beyond the horizon (a file an earlier version wrote from a clock
    /// glitch): this pass reads the whole list, with no floor, and its candidate replaces the
    /// mark instead of being compared with it.
    repairing: Option<Timestamp>,
    /// The checkpoint as last committed.
    checkpoint: Checkpoint,
    pass: Pass,
    cursor: Option<String>,
    /// The next commit resets `scan_seen` (a whole scan's first page).
    fresh_scan: bool,
    /// The current scan went on from a crashed one, so it cannot vouch for removals.
    resumed_scan: bool,
    /// Pages done when the API last refused a cursor: a second refusal with no progress since
    /// means the API refuses what we send, not a stale cursor.
    refused_at: Option<i64>,
    /// The last page's outcome, until its commit lands.
    pending: Option<(PageCommit, Option<String>)>,
    /// Cursors this pass has followed: a `next` among them is a loop, not more pages.
    followed: Followed,
}

/// The API handed back a `next` cursor this pass already followed: following it would ask for
/// the same pages for ever (and, in a first load that appends, store them again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Looping;

impl Walk {
    /// Picks up `checkpoint`: resumes an interrupted pass from its cursor while that is younger
    /// than `cursor_ttl`, restarts it when older, or starts a new pass. A candidate or a resume
    /// point beyond our clock's horizon is dropped; a high-water mark beyond it is judged again
    /// on the first page (see [`PageCommit::repair_began`]).
    pub(crate) fn start(
        mode: Mode,
        mut checkpoint: Checkpoint,
        now: Timestamp,
        settings: &Settings,
    ) -> (Self, Start) {
        let ttl = chrono::Duration::from_std(settings.cursor_ttl).unwrap_or_default();
        let clocks = Horizon::new(settings.max_skew);
        let horizon = clocks.ours(now);
        let suspect = checkpoint.high_water_mark.filter(|h| *h > horizon);
        let mut cursor = None;
        let believed = |t: Option<Timestamp>| t.filter(|t| *t <= horizon);
        let kept = checkpoint.pass.take().and_then(Pass::from_row).map(|mut pass| {
            pass.candidate = believed(pass.candidate);
            pass.progress = believed(pass.progress);
            pass.from = believed(pass.from);
            pass
        });
        let (pass, start) = match kept {
            Some(mut pass) => match (&checkpoint.cursor, checkpoint.cursor_saved_at) {
                (Some(c), Some(at)) if now - at < ttl => {
                    cursor = Some(c.clone());
                    let pages_done = pass.pages;
                    (pass, Start::Resumed { pages_done })
                }
                _ => {
                    restart(&mut pass);
                    (pass, Start::StaleCursor)
                }
            },
            None => (new_pass(mode, &checkpoint, now), Start::Fresh),
        };
        let fresh_scan = mode == Mode::Scan && cursor.is_none() && pass.pages == 0;
        let walk = Self {
            mode,
            overlap: chrono::Duration::from_std(settings.overlap).unwrap_or_default(),
            horizon: clocks,
            suspect,
            repairing: None,
            checkpoint,
            resumed_scan: mode == Mode::Scan && !fresh_scan,
            pass,
            cursor,
            fresh_scan,
            refused_at: None,
            pending: None,
            followed: Followed::default(),
        };
        let mut walk = walk;
        if let Some(c) = &walk.cursor {
            walk.followed.insert(c);
        }
        (walk, start)
    }

    /// A bootstrap notes the newest `updated_at` before it crawls (anything updated while it
    /// runs is newer, so the first incremental run picks it up): the query for that one item.
    pub(crate) fn candidate_query(&self) -> Option<ListQuery> {
        (self.pass.kind == PassKind::Bootstrap && self.pass.candidate.is_none()).then(ListQuery::newest)
    }

    /// The newest `updated_at` the API lists (`None`: no readable item; the crawl sets it).
    /// One beyond the [`horizon`](Self::horizon) is no candidate either: the crawl sets it.
    pub(crate) fn set_candidate(&mut self, newest: Option<Timestamp>, now: Timestamp) {
        let horizon = self.horizon(now);
        self.pass.candidate = newest.filter(|u| *u <= horizon);
    }

    /// The query of the next page.
    pub(crate) fn query(&self, limit: u32) -> ListQuery {
        self.query_at(limit, self.cursor.as_deref())
    }

    /// The query of this pass's page at `cursor` (the first page without one): what the walk
    /// asks for ahead, before the current page is read.
    pub(crate) fn query_at(&self, limit: u32, cursor: Option<&str>) -> ListQuery {
        let order = match self.pass.kind {
            PassKind::Bootstrap => Order::OldestCreatedFirst { from: self.pass.from },
            PassKind::Incremental => Order::NewestUpdatedFirst,
            PassKind::Scan => Order::Listed,
        };
        ListQuery {
            limit: Some(limit),
            order,
            cursor: cursor.map(str::to_owned),
        }
    }

    /// The API refused (400) the page asked for. With a cursor, and progress since the last
    /// refusal, the pass restarts and this answers true; otherwise the refusal is an error.
    pub(crate) fn refused(&mut self) -> bool {
        if self.cursor.is_none() || self.refused_at.is_some_and(|at| self.pass.pages <= at) {
            return false;
        }
        restart(&mut self.pass);
        self.cursor = None;
        self.followed.clear();
        self.refused_at = Some(self.pass.pages);
        true
    }

    /// The high-water mark beyond the horizon that this walk's pass repairs, if it does one.
    #[cfg(test)]
    pub(crate) fn repairing(&self) -> Option<Timestamp> {
        self.repairing
    }

    /// The API's clock as its latest answer stated it.
    pub(crate) fn api_clock(&mut self, at: Option<Timestamp>) {
        self.horizon.api_clock(at);
    }

    /// The latest instant a timestamp may be and still steer the walk (see [`Horizon`]).
    pub(crate) fn horizon(&self, now: Timestamp) -> Timestamp {
        self.horizon.at(now)
    }

    /// A page of `items` arrived, with its `next` cursor: what to commit with it, or `Looping`
    /// (and nothing changes) when that cursor was already followed in this pass, or when a
    /// first load's crawl (`sort=+created_at`) hands back a page wholly older than what it
    /// already crawled past (a cycle of pages, however long). Timestamps beyond the
    /// [`horizon`](Self::horizon) neither become the candidate nor move a bootstrap's progress;
    /// they are counted in `future_dated`.
    pub(crate) fn page(
        &mut self,
        items: &[Item],
        next: Option<String>,
        now: Timestamp,
    ) -> Result<PageCommit, Looping> {
        let next = next.filter(|n| !n.is_empty());
        if next.as_ref().is_some_and(|n| self.followed.contains(n)) {
            return Err(Looping);
        }
        let horizon = self.horizon(now);
        let believed = move |t: &Timestamp| *t <= horizon;
        let bootstrap = self.pass.kind == PassKind::Bootstrap;
        let newest_created = items.iter().filter_map(|i| i.created_at).filter(believed).max();
        if bootstrap
            && self
                .pass
                .progress
                .is_some_and(|p| newest_created.is_some_and(|c| c < p))
        {
            return Err(Looping);
        }
        let repair_began = self.suspect.take().filter(|mark| *mark > horizon);
        self.repairing = self.repairing.or(repair_began);
        let future_dated = items
            .iter()
            .filter(|i| {
                let steering = if bootstrap { i.created_at } else { None };
                i.updated_at.iter().chain(&steering).any(|t| !believed(t))
            })
            .count() as u64;
        let pass = &mut self.pass;
        let updated = || items.iter().filter_map(|i| i.updated_at).filter(believed);
        // A repair reads the whole list: the mark it replaces says nothing of where to stop.
        let floor = match self.repairing {
            Some(_) => None,
            None => self.checkpoint.high_water_mark.map(|h| h - self.overlap),
        };
        let reached_floor = pass.kind == PassKind::Incremental
            && floor.is_some_and(|f| updated().min().is_some_and(|u| u < f));
        if pass.kind == PassKind::Incremental && pass.candidate.is_none() {
            pass.candidate = updated().max();
        }
        // A bootstrap whose probe found no readable newest item (an unreadable one sorts first)
        // takes its mark from its crawl, or it would complete without one and start over every
        // run (appending a keyless load again). The first page was read as the crawl began, so
        // its newest update is no later than anything changed since. A resumed pass without a
        // mark re-ran the probe, which read nothing either: the pages before the interruption
        // held nothing readable (they are in quarantine, asked for by id), and the page's oldest
        // update is the lowest mark it can offer. A low mark only makes the catch-up read further.
        if pass.kind == PassKind::Bootstrap && pass.candidate.is_none() {
            pass.candidate = if pass.pages == 0 {
                updated().max()
            } else {
                updated().min()
            };
        }
        if bootstrap {
            pass.progress = pass.progress.max(newest_created);
        }
        pass.pages += 1;
        pass.rows += items.len() as i64;
        let done = next.is_none() || reached_floor;
        let mut checkpoint = Checkpoint {
            high_water_mark: self.checkpoint.high_water_mark,
            ..Checkpoint::default()
        };
        if done {
            checkpoint.high_water_mark = match self.repairing {
                Some(_) => pass.candidate,
                None => checkpoint.high_water_mark.max(pass.candidate),
            };
            // A pass that listed items but believed none of their stamps (all beyond the
            // horizon) still completes, with the time it began as its mark: it listed all there
            // was then, and what changes later is stamped later. Without a mark, every later
            // run would be a first load again, and a keyless one would append the list again
            // each time with its key never rebuilt.
            if checkpoint.high_water_mark.is_none() && pass.rows > 0 && self.mode == Mode::Incremental {
                checkpoint.high_water_mark = Some(pass.started_at);
            }
            checkpoint.completed = true;
        } else {
            checkpoint.cursor = next.clone();
            checkpoint.cursor_saved_at = Some(now);
            checkpoint.pass = Some(pass.to_row());
        }
        let scan_complete = done && self.mode == Mode::Scan;
        let commit = PageCommit {
            checkpoint,
            reset_seen: std::mem::take(&mut self.fresh_scan),
            sweep_quarantine_before: scan_complete.then_some(pass.started_at),
            done,
            future_dated,
            repair_began,
        };
        self.pending = Some((commit.clone(), next));
        Ok(commit)
    }

    /// The last page's commit landed: what comes next.
    pub(crate) fn committed(&mut self, now: Timestamp) -> Next {
        let Some((commit, next)) = self.pending.take() else {
            return Next::Fetch;
        };
        self.checkpoint = commit.checkpoint;
        if commit.done {
            self.repairing = None;
        }
        if !commit.done {
            if let Some(n) = &next {
                self.followed.insert(n);
            }
            self.cursor = next;
            return Next::Fetch;
        }
        self.cursor = None;
        self.followed.clear();
        if self.pass.kind == PassKind::Bootstrap && self.checkpoint.high_water_mark.is_some() {
            self.pass = new_pass(self.mode, &self.checkpoint, now);
            return Next::CatchUp;
        }
        if self.mode == Mode::Scan && self.resumed_scan {
            self.pass = new_pass(self.mode, &self.checkpoint, now);
            self.fresh_scan = true;
            self.resumed_scan = false;
            return Next::Rescan;
        }
        if self.mode == Mode::Scan {
            Next::ConfirmRemovals
        } else {
            Next::Done
        }
    }

    /// After a complete scan: one more whole scan, at once (its first page forgets what the
    /// last one listed).
    pub(crate) fn rescan(&mut self, now: Timestamp) {
        self.pass = new_pass(self.mode, &self.checkpoint, now);
        self.cursor = None;
        self.followed.clear();
        self.fresh_scan = true;
        self.resumed_scan = false;
    }

    pub(crate) fn pass_kind(&self) -> PassKind {
        self.pass.kind
    }

    /// Whether the current pass follows its list to the end whatever a page holds (a bootstrap
    /// or a scan); an incremental pass stops at the first page below its floor.
    pub(crate) fn walks_to_the_end(&self) -> bool {
        self.pass.kind != PassKind::Incremental
    }
}

#[cfg(test)]
mod horizon_tests;
#[cfg(test)]
mod tests;
