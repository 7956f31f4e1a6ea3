//! One list stream and, through its fan-out, its per-parent streams.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

use super::ctx::{Ctx, StreamRun};
use super::error::{Error, Failure};
use super::fan_out::{FanOutReport, backfill, fan_out};
use super::first_load::{defer_indexes_for_first_load, restore_indexes_unless_loading};
use super::pages::walk_list;
use super::removals::retry_quarantined;
use super::report::StreamReport;
use crate::streams::Stream;

/// One list stream and, through its fan-out, its per-parent streams: their reports, the
/// list's first.
#[tracing::instrument(name = "stream", skip_all, fields(stream = stream.name))]
pub(super) async fn run_stream(ctx: &Ctx, stream: &'static Stream) -> Vec<StreamReport> {
    // The panic tests' way into a run under way: `UNDERSTORY_SYNC_TEST_PANIC_AT=stream:bookings`
    // panics as that stream starts. Test builds only (the `test-hooks` feature).
    #[cfg(feature = "test-hooks")]
    if std::env::var("UNDERSTORY_SYNC_TEST_PANIC_AT").is_ok_and(|v| v == format!("stream:{}", stream.name)) {
        panic!("UNDERSTORY_SYNC_TEST_PANIC_AT is set for {}", stream.name);
    }
    let started = Instant::now();
    let stats = ctx.progress.stats(stream.name);
    let stats = stats.as_ref();
    let mut report = StreamReport {
        stream: stream.name,
        ..StreamReport::default()
    };
    let walk_done = AtomicBool::new(false);
    let wake = Notify::new();
    let run = StreamRun {
        ctx,
        stream,
        stats,
        wake: &wake,
    };
    let children = ctx.children(stream);
    let mut fan = FanOutReport::new(children);
    let deferred = defer_indexes_for_first_load(ctx, stream).await;
    let walking = async {
        let mut result = backfill(ctx, stream, children).await;
        if result.is_ok() {
            result = walk_list(run, &mut report).await;
        }
        // After the walk, never before it: the list is what the run is for, and a quarantined
        // item the API keeps failing on must not stand in front of it.
        if result.is_ok() {
            result = retry_quarantined(run, &mut report).await;
        }
        walk_done.store(true, Ordering::Release);
        wake.notify_one();
        result
    };
    let (walked, fanned) = if !children.is_empty() {
        tokio::join!(
            walking,
            fan_out(ctx, stream, children, &walk_done, &wake, &mut fan)
        )
    } else {
        (walking.await, Ok(()))
    };
    // What the fan-out wrote counts whether or not it finished: an interrupted run reports
    // every row it committed.
    report.counts += fan.parent.counts;
    let result = walked.and(fanned);
    let result = match (result, deferred) {
        (r, false) => r,
        (r, true) => restore_indexes_unless_loading(ctx, stream, r).await,
    };
    let failed = result.is_err();
    for name in std::iter::once(stream.name).chain(children.iter().map(|c| c.name)) {
        ctx.progress.update(name, |p| {
            p.done = true;
            p.failed = failed;
        });
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    let reports = reports(ctx, report, fan.children, result);
    for r in &reports {
        say_finished(r);
    }
    reports
}

/// The list stream's report, with its request counts and its failure, if any (said once, here),
/// followed by its per-parent streams' reports, which share its duration and fate.
fn reports(
    ctx: &Ctx,
    mut report: StreamReport,
    children: Vec<StreamReport>,
    result: Result<(), Error>,
) -> Vec<StreamReport> {
    let counted = |report: &mut StreamReport| {
        report.counts += ctx.progress.stats(report.stream).counts();
    };
    counted(&mut report);
    if let Err(e) = result {
        let failure = e.failure();
        if failure == Failure::Stopped {
            tracing::warn!(
                pages = report.counts.pages,
                "stopped; the next run resumes from the checkpoint"
            );
        } else {
            tracing::error!(error = %e, "stream failed; rows committed before the failure are kept");
        }
        report.failure = Some(failure);
        report.error = Some(e.to_string());
    }
    let mut reports = vec![report];
    for mut child in children {
        counted(&mut child);
        child.duration_ms = reports[0].duration_ms;
        child.pass_completed = reports[0].pass_completed;
        // Its lists were fetched by the parent's fan-out: when that failed, so did it. The
        // error is said once, in the parent's report (naming the list that failed, if one did).
        child.failure = reports[0].failure;
        reports.push(child);
    }
    reports
}

fn say_finished(r: &StreamReport) {
    let c = &r.counts;
    if c.quarantined > 1 {
        tracing::warn!(
            stream = r.stream,
            items = c.quarantined,
            "items could not be read in this run and are kept in quarantine (see the quarantine table)"
        );
    }
    tracing::info!(
        stream = r.stream,
        inserted = c.inserted,
        updated = c.updated,
        unchanged = c.unchanged,
        removed = c.removed,
        quarantined = c.quarantined,
        pages = c.pages,
        staged = c.staged,
        cursor_restarts = c.cursor_restarts,
        requests = c.requests,
        retries = c.retries,
        rate_limited = c.rate_limited,
        future_dated = c.future_dated,
        duration_ms = r.duration_ms,
        "stream finished"
    );
}
