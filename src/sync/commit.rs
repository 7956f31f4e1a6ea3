//! A page on its way to the database: read into rows and quarantined items, its rows written
//! or staged for the fan-out, handed to the writer, and counted once it has landed.

use serde_json::value::RawValue;

use super::ctx::Ctx;
use super::error::Error;
use super::report::StreamReport;
use crate::counts::Counts;
use crate::store::{self, Commit, Quarantined};
use crate::streams::{self, At, Item, Stream};

/// A page's rows, as (rows to write, rows to stage): parents with sub-resources wait in staging
/// for the fan-out, so the walk moves on at once.
pub(super) fn rows_or_staged(
    ctx: &Ctx,
    stream: &'static Stream,
    items: Vec<Item>,
) -> (Vec<store::Row>, Vec<store::Row>) {
    let rows = items.into_iter().map(|i| i.row).collect();
    if !ctx.children(stream).is_empty() {
        (Vec::new(), rows)
    } else {
        (rows, Vec::new())
    }
}

/// Splits a page into the items that read and those that go to quarantine.
pub(super) fn read_page(stream: &'static Stream, raw: &[Box<RawValue>]) -> (Vec<Item>, Vec<Quarantined>) {
    let mut items = Vec::with_capacity(raw.len());
    let mut bad = Vec::new();
    for r in raw {
        match stream.read(At::TOP, r) {
            Ok(item) => items.push(item),
            Err(error) => bad.push(streams::quarantined(stream.name, r, error)),
        }
    }
    (items, bad)
}

/// Commits one page's writes and counts them into `report`.
pub(super) async fn commit_page(
    ctx: &Ctx,
    commit: Commit,
    report: &mut StreamReport,
) -> Result<Counts, Error> {
    let committed = ctx.writer.send(commit).await.landed().await?;
    Ok(count(committed, report))
}

/// Counts what a commit wrote into `report`. The stream's first item quarantined in this run
/// gets a warning of its own; the others are counted, and the stream's summary says how many
/// (thousands of unreadable items must not be thousands of lines, page after page).
pub(super) fn count(committed: store::Committed, report: &mut StreamReport) -> Counts {
    if report.counts.quarantined == 0
        && let Some(q) = committed.newly_quarantined.first()
    {
        tracing::warn!(
            item = %crate::http::printable(&q.key, 200),
            table = q.stream,
            error = %crate::http::printable(&q.error, crate::http::MESSAGE_CHARS),
            "an item could not be read: it is kept in quarantine, the rest of its page is stored, and it is tried again in later runs (the stream's summary counts any others)"
        );
    }
    report.counts += committed.counts;
    committed.counts
}
