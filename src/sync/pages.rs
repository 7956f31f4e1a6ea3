//! The walk of one list, page by page: each page fetched while the one before is read, handed
//! to the writer with the checkpoint that follows it, and stopped when the list loops.

use std::sync::Arc;

use chrono::Utc;
use serde_json::value::RawValue;

use super::commit::{read_page, rows_or_staged};
use super::ctx::{StreamRun, blocking};
use super::error::Error;
use super::first_load::restore_indexes_unless_loading;
use super::in_flight::{InFlight, Landing, MAX_PAGES_IN_FLIGHT};
use super::removals::confirm_removals;
use super::repeats::RecentPages;
use super::report::StreamReport;
use super::walk::{self, Next, Walk};
use crate::api::types::Page;
use crate::api::{self, ListQuery};
use crate::memory::Held;
use crate::pace::Lane;
use crate::store::{Commit, Quarantined};
use crate::streams::{At, Item, Mode};

/// Walks the stream's list page by page as `walk::Walk` decides, committing each page with
/// the checkpoint that follows it.
pub(super) async fn walk_list(run: StreamRun<'_>, report: &mut StreamReport) -> Result<(), Error> {
    let mut p = Pages {
        run,
        w: start_walk(run).await?,
        in_flight: InFlight::default(),
        fetched_ahead: None,
        said_oversized: false,
        said_future: false,
        recent: RecentPages::default(),
        rescanned: false,
        caught_up: false,
    };
    let result = loop {
        match p.step(report).await {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // Whatever ended the walk, the pages already handed over land (or fail) before it returns.
    let landed = p.in_flight.reap(run, report, 0).await;
    result.and(landed)
}

/// The stream's walk from its checkpoint: resumed, restarted or fresh (said in the log), and
/// for a bootstrap the newest update noted before the crawl begins.
async fn start_walk(run: StreamRun<'_>) -> Result<Walk, Error> {
    let StreamRun { ctx, stream, .. } = run;
    let name = stream.name;
    let store = Arc::clone(&ctx.store);
    let checkpoint = blocking(move || store.load_checkpoint(name)).await?;
    let sync = &ctx.config.sync;
    let settings = walk::Settings {
        cursor_ttl: sync.cursor_ttl,
        overlap: sync.overlap,
        max_skew: sync.max_clock_skew,
    };
    let (mut w, start) = Walk::start(stream.mode, checkpoint, Utc::now(), &settings);
    match start {
        walk::Start::Fresh => {}
        walk::Start::Resumed { pages_done } => {
            tracing::info!(
                pages_done,
                "resuming the interrupted pass from its checkpointed cursor"
            );
        }
        walk::Start::StaleCursor => tracing::warn!(
            pass = w.pass_kind().as_str(),
            "the checkpointed cursor is too old to use; restarting the pass from the high-water mark"
        ),
    }
    if let Some(q) = w.candidate_query() {
        // One item asked for, but the API may send up to `api.max_response_bytes`: counted.
        let (top, _held) = counted_page(run, &q).await;
        let top = top.map_err(|cause| Error::Api { stream: name, cause })?;
        // An unreadable first item, or one stamped beyond the horizon, only means no candidate
        // yet: the crawl's first page sets it.
        w.api_clock(ctx.api.server_time());
        let first = top.items.first().and_then(|r| stream.read(At::TOP, r).ok());
        w.set_candidate(first.and_then(|i| i.updated_at), Utc::now());
    }
    Ok(w)
}

/// One list's walk in progress.
struct Pages<'c> {
    run: StreamRun<'c>,
    w: Walk,
    /// Pages handed to the writer whose commits have not landed yet: the next page is fetched
    /// and parsed while they are written.
    in_flight: InFlight,
    /// The next page, fetched while this one was read (see `read`), with its query and its
    /// bytes.
    fetched_ahead: Option<(ListQuery, Fetched, Held)>,
    said_oversized: bool,
    /// Whether items beyond the horizon were said this walk.
    said_future: bool,
    recent: RecentPages,
    /// Whether this run already scanned a second time to settle rows without an id.
    rescanned: bool,
    /// This walk completed a first load and now catches up on what changed meanwhile.
    caught_up: bool,
}

impl Pages<'_> {
    fn api_err(&self, cause: api::Error) -> Error {
        Error::Api {
            stream: self.run.stream.name,
            cause,
        }
    }

    /// One page: fetched, read, handed to the writer, and what the walk does next. False when
    /// the walk is over.
    async fn step(&mut self, report: &mut StreamReport) -> Result<bool, Error> {
        let StreamRun { ctx, stream, .. } = self.run;
        if ctx.stop.is_stopped() {
            return Err(Error::Stopped {
                stream: Some(stream.name),
            });
        }
        self.in_flight.reap(self.run, report, MAX_PAGES_IN_FLIGHT).await?;
        let Some((page, held)) = self.fetch(report).await? else {
            return Ok(true);
        };
        let Page { next, items: raw } = page;
        let ahead = self.ahead(next.as_deref());
        let (items, bad) = self.read(raw, ahead).await?;
        // Fresh cursors over the same items are a loop too: a page that only repeats items of
        // the pass's last few pages ends it (a first load, which appends, would store them
        // again on every page).
        // Only in a first load's crawl (sort=+created_at): there rows never shift back under
        // the cursor, while an incremental pass legitimately re-lists rows updated meanwhile.
        if self.w.pass_kind() == walk::PassKind::Bootstrap && self.recent.repeats(&items) {
            return Err(Error::Looping { stream: stream.name });
        }
        self.w.api_clock(ctx.api.server_time());
        let Ok(step) = self.w.page(&items, next, Utc::now()) else {
            return Err(Error::Looping { stream: stream.name });
        };
        self.future_dated(step.future_dated, report);
        if let Some(mark) = step.repair_began {
            tracing::warn!(
                high_water_mark = %crate::time::iso(mark),
                "the high-water mark is in the future (a clock glitch stored it): reading the whole list once to set it again"
            );
        }
        let seen: Vec<String> = if stream.mode == Mode::Scan {
            items.iter().map(|i| i.key.clone()).collect()
        } else {
            Vec::new()
        };
        let (rows, stage) = rows_or_staged(ctx, stream, items);
        let commit = Commit {
            stream: stream.name,
            rows,
            stage,
            watch_since: ctx.watch_since(stream),
            checkpoint: Some(step.checkpoint),
            sweep_quarantine_before: step.sweep_quarantine_before,
            quarantined: bad,
            reset_seen: step.reset_seen,
            seen,
            held,
            ..Commit::default()
        };
        let landing = Landing {
            completes_pass: step.done,
            relisted: self.caught_up,
        };
        self.in_flight.push(ctx.writer.send(commit).await, landing);
        self.after_commit(report).await
    }

    /// Counts items stamped beyond the horizon, and says so once per walk: they are stored, but
    /// an operator should know the API's clock (or ours) has gone astray.
    fn future_dated(&mut self, n: u64, report: &mut StreamReport) {
        if n == 0 {
            return;
        }
        report.counts.future_dated += n;
        if !std::mem::replace(&mut self.said_future, true) {
            tracing::warn!(
                items = n,
                max_clock_skew_secs = self.run.ctx.config.sync.max_clock_skew.as_secs(),
                "items are stamped further ahead than sync.max_clock_skew_secs of both the API's clock and ours: stored, but never taken as the high-water mark"
            );
        }
    }

    /// The page the walk asks for next (fetched ahead, or now), with its bytes counted in the
    /// run's budget until it is written; `None` when the API refused the cursor and the pass
    /// restarts.
    async fn fetch(
        &mut self,
        report: &mut StreamReport,
    ) -> Result<Option<(Page<Box<RawValue>>, Held)>, Error> {
        let page_size = self.run.ctx.config.api.page_size;
        let q = self.w.query(page_size);
        // A page fetched ahead for another query is dropped (its bytes given back) before its
        // replacement is asked for.
        let ahead = self.fetched_ahead.take().filter(|(ahead, ..)| *ahead == q);
        let (fetched, held) = match ahead {
            Some((_, fetched, held)) => (fetched, held),
            None => counted_page(self.run, &q).await,
        };
        let page: Page<Box<RawValue>> = match fetched {
            Ok(p) => p,
            Err(e) if e.is_bad_request() && self.w.refused() => {
                tracing::warn!(error = %e, "the API refused the cursor; restarting the pass from the high-water mark");
                report.counts.cursor_restarts += 1;
                self.recent.clear();
                return Ok(None);
            }
            Err(e) => return Err(self.api_err(e)),
        };
        // The docs are vague on limits: more items than asked for are stored (a real sync must
        // not fail over it), and said once per walk.
        if page.items.len() > page_size as usize && !self.said_oversized {
            self.said_oversized = true;
            tracing::warn!(
                asked = page_size,
                got = page.items.len(),
                "the API sent more items than the page size asked for; storing them all"
            );
        }
        Ok(Some((page, held)))
    }

    /// The query of the page after this one, if it is to be asked for while this one is read.
    /// A pass that walks to the end of its list (a bootstrap or a scan) will ask for `next`
    /// whatever this page holds; an incremental pass may stop at this page, so it does not ask
    /// ahead (a run with nothing changed stays one request).
    fn ahead(&self, next: Option<&str>) -> Option<ListQuery> {
        let next = next.filter(|n| !n.is_empty())?;
        self.w
            .walks_to_the_end()
            .then(|| self.w.query_at(self.run.ctx.config.api.page_size, Some(next)))
    }

    /// Reads the page on a blocking thread while the page after it (`ahead`) is fetched: the
    /// walk then waits for one page at a time, not for a page and its reading.
    async fn read(
        &mut self,
        raw: Vec<Box<RawValue>>,
        ahead: Option<ListQuery>,
    ) -> Result<(Vec<Item>, Vec<Quarantined>), Error> {
        let run = self.run;
        let stream = run.stream;
        let (read, ahead) = tokio::join!(
            tokio::task::spawn_blocking(move || read_page(stream, &raw)),
            async {
                match ahead {
                    Some(q) => {
                        let (fetched, held) = counted_page(run, &q).await;
                        Some((q, fetched, held))
                    }
                    None => None,
                }
            }
        );
        self.fetched_ahead = ahead;
        read.map_err(|e| Error::Task {
            what: "reading a page",
            detail: e.to_string(),
        })
    }

    /// What the walk does once a page is handed over: fetch on, build the indexes before the
    /// catch-up, scan again, confirm removals, or stop. False when the walk is over.
    async fn after_commit(&mut self, report: &mut StreamReport) -> Result<bool, Error> {
        let StreamRun { ctx, stream, .. } = self.run;
        match self.w.committed(Utc::now()) {
            Next::Fetch => Ok(true),
            // The bootstrap's pages are all in: its table's indexes are built before the
            // catch-up pass re-lists the newest rows, which then find their stored copies by
            // key instead of being stored again (and folded) in a keyless table.
            Next::CatchUp => {
                self.caught_up = true;
                self.recent.clear();
                self.in_flight.reap(self.run, report, 0).await?;
                restore_indexes_unless_loading(ctx, stream, Ok(())).await?;
                Ok(true)
            }
            Next::Rescan => {
                self.recent.clear();
                tracing::info!(
                    "the resumed scan is complete; scanning once more from the start to detect removals"
                );
                Ok(true)
            }
            // Removals are decided from every key the scan listed: all its pages first.
            Next::ConfirmRemovals => {
                self.in_flight.reap(self.run, report, 0).await?;
                let missed = confirm_removals(self.run, report).await?;
                // Rows without an id cannot be asked about: a second whole scan, at once,
                // settles them (a row both scans miss is gone), so one run converges.
                if missed > 0 && !self.rescanned {
                    self.rescanned = true;
                    tracing::info!(
                        missed,
                        "rows without an id were not listed: scanning once more to confirm their removal"
                    );
                    self.w.rescan(Utc::now());
                    self.recent.clear();
                    return Ok(true);
                }
                Ok(false)
            }
            Next::Done => Ok(false),
        }
    }
}

/// One page of the stream's list, its bytes counted in the run's budget (`memory`) until the
/// `Held` that comes with it is dropped, once its rows are written.
async fn counted_page(run: StreamRun<'_>, q: &ListQuery) -> (Fetched, Held) {
    let held = run.ctx.budget.hold();
    let fetched = run
        .ctx
        .api
        .page(Lane::Walk, run.stats, run.stream.path, q, &held)
        .await;
    held.seal();
    (fetched, held)
}

/// What asking for one list page got.
pub(super) type Fetched = Result<Page<Box<RawValue>>, api::Error>;
