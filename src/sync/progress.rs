//! Progress of a long run, for those who are not watching a terminal: every
//! `sync.progress_secs` one `info` line per stream still working (pages, rows, requests, the
//! pace, and for a fan-out how many staged parents it has written), and every few seconds the
//! run's requests in its `sync_runs` row, so `status` shows a run in progress as it goes (its
//! row counts are kept by the commits themselves, see `store::Store::commit_group`).

use std::sync::Arc;
use std::time::Duration;

use super::{Ctx, blocking};

/// How often the running run's row gets its request counts: often enough for `status`, rarely
/// enough to cost nothing beside the commits.
const RECORD_EVERY: Duration = Duration::from_secs(5);

/// Runs until aborted (when the run's streams have all ended).
pub(super) async fn report(ctx: Arc<Ctx>, run_id: i64) {
    let log_every = ctx.config.sync.progress_interval;
    let tick = log_every.map_or(RECORD_EVERY, |l| l.min(RECORD_EVERY));
    let mut since_log = Duration::ZERO;
    loop {
        tokio::time::sleep(tick).await;
        since_log += tick;
        let (requests, retries, rate_limited) = ctx.progress.requests();
        let store = Arc::clone(&ctx.store);
        // Only `status` reads it, so a failure here (a busy or full disk) is the commits' to
        // report, not ours.
        let _ = blocking(move || store.record_requests(run_id, requests, retries, rate_limited)).await;
        if let Some(every) = log_every
            && since_log >= every
        {
            since_log = Duration::ZERO;
            log_lines(&ctx);
        }
    }
}

/// One line per stream not yet done.
fn log_lines(ctx: &Ctx) {
    let pace = ctx.api.pace().report();
    for (stream, p, requests) in ctx.progress.snapshot() {
        if p.done {
            continue;
        }
        let waiting = p.staged.saturating_sub(p.fanned_out);
        tracing::info!(
            stream,
            pages = p.pages,
            rows = p.rows,
            requests,
            pace_rps = format!("{:.1}", pace.rate),
            staged = p.staged,
            fanned_out = p.fanned_out,
            waiting_for_fan_out = waiting,
            "progress"
        );
    }
}
