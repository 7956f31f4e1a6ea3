//! Progress of a long run, for those who are not watching a terminal: every
//! `sync.progress_secs` one `info` line per stream still working (pages, rows, requests, the
//! pace, and for a stream with a fan-out the parents still waiting in `staging` and the share
//! of its fan-out done), and every few seconds the run's requests in its `sync_runs` row, so
//! `status` shows a run in progress as it goes (its row counts are kept by the commits
//! themselves, see `store::Store::commit_group`), and the pace learned so far in `pace_state`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ctx::{Ctx, blocking};

/// How often the running run's row gets its request counts: often enough for `status`, rarely
/// enough to cost nothing beside the commits.
const RECORD_EVERY: Duration = Duration::from_secs(5);

/// Runs until aborted (when the run's streams have all ended).
pub(super) async fn report(ctx: Arc<Ctx>, run_id: i64) {
    let log_every = ctx.config.sync.progress_interval;
    let tick = log_every.map_or(RECORD_EVERY, |l| l.min(RECORD_EVERY));
    let mut next_log = log_every.map(|every| Instant::now() + every);
    loop {
        tokio::time::sleep(tick).await;
        let requests = ctx.progress.requests();
        let learned = ctx.api.pace().learned();
        let store = Arc::clone(&ctx.store);
        // The pace learned so far is kept as it changes, not only when the run ends: a run
        // that is killed (a reboot, an OOM kill, a unit's timeout) after hours of finding the
        // budget leaves it to the next. Only `status` and the next run read these, so a failure
        // here (a busy or full disk) is the commits' to report, not ours.
        let _ = blocking(move || {
            store.record_requests(run_id, &requests)?;
            store.save_pace(&learned, chrono::Utc::now())
        })
        .await;
        if let (Some(due), Some(every)) = (next_log, log_every)
            && Instant::now() >= due
        {
            next_log = Some(due + every);
            log_lines(&ctx).await;
        }
    }
}

/// One line per stream not yet done, with the learned budget and the share of it used; for a
/// stream with a fan-out, the time its staged parents take at that budget (what is left is known:
/// a request per per-parent list); for a list walk, none (the API does not tell a list's length).
async fn log_lines(ctx: &Ctx) {
    let pace = ctx.api.pace().report();
    let budget = pace.ceiling.map(round);
    let used = pace.ceiling.map(|c| round(100.0 * pace.sent_rate / c));
    let per_second = pace.ceiling.unwrap_or(pace.rate).max(crate::pace::FLOOR);
    for (stream, p) in ctx.progress.snapshot() {
        if p.done {
            continue;
        }
        if let Some(children) = ctx.children.get(stream) {
            // What is left is what `staging` holds (a parent listed twice waits once).
            let store = Arc::clone(&ctx.store);
            let waiting = blocking(move || store.staged_count(stream)).await.unwrap_or(0);
            let done = p.fanned_out as f64 / (p.fanned_out + waiting).max(1) as f64;
            let left_secs = (waiting as f64 * children.len().max(1) as f64 / per_second).round() as u64;
            tracing::info!(
                stream,
                pages = p.counts.pages,
                rows = p.counts.rows(),
                requests = p.counts.requests,
                pace_rps = round(pace.rate),
                budget_rps = budget,
                budget_used_pct = used,
                fanned_out = p.fanned_out,
                waiting_for_fan_out = waiting,
                fan_out_done_pct = round(100.0 * done),
                fan_out_left_secs = left_secs,
                "progress"
            );
        } else {
            tracing::info!(
                stream,
                pages = p.counts.pages,
                rows = p.counts.rows(),
                requests = p.counts.requests,
                pace_rps = round(pace.rate),
                budget_rps = budget,
                budget_used_pct = used,
                left = "unknown: the API does not tell a list's length",
                "progress"
            );
        }
    }
}

/// One decimal: a figure to read, not to compute with.
fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
