//! The fan-out: per-parent lists (an order's line items, a booking's tickets, an experience's
//! ticket variants) fetched for every staged parent, and committed with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use futures::StreamExt;
use serde_json::value::RawValue;
use tokio::sync::Notify;

use super::commit::{count, read_page};
use super::ctx::{Ctx, blocking};
use super::error::Error;
use super::report::StreamReport;
use crate::api::Stats;
use crate::counts::Counts;
use crate::memory::Held;
use crate::store::{self, Children, Commit};
use crate::streams::{Mode, Stream};

/// Staged parents the fan-out takes from the database at a time.
const FAN_OUT_BATCH: usize = 64;

/// What a fan-out wrote: the parents (its own stream's rows) and each per-parent stream's rows,
/// counted as they land, so a fan-out that fails or is stopped midway still reports them.
pub(super) struct FanOutReport {
    pub(crate) parent: StreamReport,
    /// One per per-parent stream, in the order of `children`; `pages` counts the parents whose
    /// list it fetched.
    pub(crate) children: Vec<StreamReport>,
}

impl FanOutReport {
    pub(crate) fn new(children: &[&'static Stream]) -> Self {
        Self {
            parent: StreamReport::default(),
            children: children
                .iter()
                .map(|c| StreamReport {
                    stream: c.name,
                    ..StreamReport::default()
                })
                .collect(),
        }
    }

    /// Counts a landed fan-out commit: the parent's rows into the parent's report, each
    /// per-parent list into its stream's. Returns the parent's own rows.
    fn count(&mut self, committed: store::Committed) -> Counts {
        let lists = committed.children.clone();
        let parent = count(committed, &mut self.parent);
        for (table, c) in lists {
            if let Some(r) = self.children.iter_mut().find(|r| r.stream == table) {
                r.counts += Counts { pages: 1, ..c };
            }
        }
        parent
    }
}

/// Drains `staging` while the walk runs and after it: fetches each staged parent's per-parent
/// lists (an order's line items, transactions and refunds; a booking's tickets) and commits the
/// parent with them in one transaction, so analysts never see an order without its line items.
/// Its requests go in the pace's fan-out lane, behind any list walk request. Ends when the walk
/// has ended and nothing is left staged. A parent whose list is refused (too long, too large,
/// a loop) stays staged and is passed over for the rest of the run, so the others are stored;
/// the fan-out then ends with that error, so the run does not exit 0.
pub(super) async fn fan_out(
    ctx: &Ctx,
    stream: &'static Stream,
    children: &[&'static Stream],
    walk_done: &AtomicBool,
    wake: &Notify,
    report: &mut FanOutReport,
) -> Result<(), Error> {
    let name = stream.name;
    let stats: Vec<Arc<Stats>> = children.iter().map(|c| ctx.progress.stats(c.name)).collect();
    let stats = stats.as_slice();
    let mut refused = Refused::default();
    loop {
        if ctx.stop.is_stopped() {
            return Err(Error::Stopped { stream: Some(name) });
        }
        // Armed before looking, so a page staged right after the look still wakes us.
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let finished = walk_done.load(Ordering::Acquire);
        let store = Arc::clone(&ctx.store);
        let skip = refused.parents.clone();
        let batch = blocking(move || store.staged(name, &skip, FAN_OUT_BATCH)).await?;
        if batch.is_empty() {
            if finished {
                return refused.first.map_or(Ok(()), Err);
            }
            tokio::select! {
                () = &mut woken => {}
                () = ctx.stop.stopped() => {}
            }
            continue;
        }
        fan_out_batch(ctx, stream, children, stats, batch, report, &mut refused).await?;
    }
}

/// Parents whose lists were refused this run: left staged, and not asked for again until the
/// next run.
#[derive(Default)]
struct Refused {
    parents: Vec<String>,
    /// The first refusal: what the fan-out ends with.
    first: Option<Error>,
}

/// One batch of staged parents: their lists fetched side by side, each parent committed with
/// its lists as they arrive, and all of it landed before the next batch is read. A parent's
/// lists are counted in the run's memory budget from the first body read until the writer has
/// written them: a fetch that would pass the ceiling waits for bytes to be given back.
async fn fan_out_batch(
    ctx: &Ctx,
    stream: &'static Stream,
    children: &[&'static Stream],
    stats: &[Arc<Stats>],
    batch: Vec<(String, String)>,
    report: &mut FanOutReport,
    refused: &mut Refused,
) -> Result<(), Error> {
    let name = stream.name;
    let mut fetched = futures::stream::iter(batch)
        .map(|(id, raw)| async move {
            let held = ctx.budget.hold();
            let lists = fetch_children(ctx, stream, children, stats, &id, &held).await;
            held.seal();
            (id, raw, lists, held)
        })
        .buffer_unordered(ctx.config.api.max_concurrent.max(1));
    // Commits handed to the writer; the batch's fetches go on while they are written, and
    // all of them land before the next batch is read from `staging`.
    let mut pending = Vec::new();
    let mut failed = None;
    while let Some((id, raw, lists, held)) = fetched.next().await {
        let lists = match lists {
            Ok(c) => c,
            Err(Error::Api { cause, .. }) if cause.is_not_found() || cause.is_unaddressable() => {
                tracing::warn!(parent = %crate::http::printable(&id, 200), error = %cause, "the item's lists cannot be fetched (it vanished, or no URL addresses it); dropped");
                let store = Arc::clone(&ctx.store);
                blocking(move || store.unstage(name, &id)).await?;
                continue;
            }
            Err(Error::Api { stream: child, cause }) if cause.is_list_refused() => {
                tracing::warn!(parent = %crate::http::printable(&id, 200), stream = child, error = %cause, "the item's list is refused; it stays staged, the other items go on");
                refused.parents.push(id);
                refused.first.get_or_insert(Error::Api { stream: child, cause });
                continue;
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        let raw = RawValue::from_string(raw).map_err(|e| Error::Staged {
            stream: name,
            detail: e.to_string(),
        })?;
        let (items, bad) = read_page(stream, std::slice::from_ref(&raw));
        let commit = Commit {
            stream: name,
            rows: items.into_iter().map(|i| i.row).collect(),
            children: lists,
            quarantined: bad,
            unstage: Some(store::Staged {
                item_key: id,
                raw_json: raw.get().to_owned(),
            }),
            held,
            ..Commit::default()
        };
        pending.push(ctx.writer.send(commit).await);
    }
    drop(fetched);
    for p in pending {
        let committed = p.landed().await?;
        for &(table, c) in &committed.children {
            ctx.progress
                .update(table, |p| p.counts += Counts { pages: 1, ..c });
        }
        let counts = report.count(committed);
        ctx.progress.update(name, |p| {
            p.counts += counts;
            p.fanned_out += 1;
        });
    }
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(())
}

/// One parent's per-parent lists, fetched together, each whole (see
/// `ApiClient::per_item_list`), their bodies counted in `held`. A failure is the per-parent
/// stream's.
pub(super) async fn fetch_children(
    ctx: &Ctx,
    parent: &'static Stream,
    children: &[&'static Stream],
    stats: &[Arc<Stats>],
    id: &str,
    held: &Held,
) -> Result<Vec<Children>, Error> {
    let lists = children.iter().zip(stats).map(|(&child, stats)| async move {
        let paged = matches!(child.mode, Mode::PerParent(p) if p.paged);
        let items = ctx
            .api
            .per_item_list(
                stats,
                (parent.path, id, child.path),
                paged.then_some(ctx.config.api.page_size),
                held,
            )
            .await
            .map_err(|cause| Error::Api {
                stream: child.name,
                cause,
            })?;
        Ok::<_, Error>(child.read_list(id, &items))
    });
    futures::future::try_join_all(lists).await
}

/// A per-parent stream enabled on a database that already holds its parents: every stored
/// parent is staged once, so the fan-out fetches the new lists for rows that will not change
/// again soon. The child's `sync_state` row records that this was done (in the same
/// transaction), so it happens once per stream, and a crash midway leaves the rest staged.
pub(super) async fn backfill(
    ctx: &Ctx,
    stream: &'static Stream,
    children: &[&'static Stream],
) -> Result<(), Error> {
    for &child in children {
        let store = Arc::clone(&ctx.store);
        let staged = blocking(move || store.backfill(stream.name, child.name, Utc::now())).await?;
        if let Some(n) = staged.filter(|n| *n > 0) {
            tracing::info!(
                child = child.name,
                parents = n,
                "a newly enabled stream: every stored parent is staged once for it"
            );
        }
    }
    Ok(())
}
