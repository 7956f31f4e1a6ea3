//! The pages a walk has handed to the writer and not yet seen committed.

use super::commit::count;
use super::ctx::StreamRun;
use super::error::Error;
use super::report::StreamReport;
use crate::counts::Counts;
use crate::store;

/// Pages a walk may have handed to the writer and not yet seen land: enough for the writer to
/// group them (see `store::Writer`), few enough to keep memory flat (about 32 × 100 rows).
/// Their bytes are counted in the run's budget too (`memory`), so 32 pages near
/// `api.max_response_bytes` wait for room instead of taking half a gigabyte.
pub(super) const MAX_PAGES_IN_FLIGHT: usize = 32;

/// What a page handed to the writer is, for counting it once it lands.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Landing {
    /// The page completes its pass.
    pub(crate) completes_pass: bool,
    /// The page belongs to the catch-up that follows a first load in the same run: its
    /// unchanged rows are the ones the load stored moments before, not rows listed again since
    /// an earlier run, so they are not counted as `unchanged` (a first run would otherwise
    /// report a page of its own rows as unchanged).
    pub(crate) relisted: bool,
}

/// A walk's pages on their way to the database, oldest first.
#[derive(Default)]
pub(super) struct InFlight(std::collections::VecDeque<(store::Pending, Landing)>);

impl InFlight {
    pub(super) fn push(&mut self, pending: store::Pending, landing: Landing) {
        self.0.push_back((pending, landing));
    }

    /// Counts the pages that have landed into `report`, waiting for the oldest while more than
    /// `keep` are still on their way; the first failure ends the walk.
    pub(super) async fn reap(
        &mut self,
        run: StreamRun<'_>,
        report: &mut StreamReport,
        keep: usize,
    ) -> Result<(), Error> {
        loop {
            let must_wait = self.0.len() > keep;
            let Some((pending, _)) = self.0.front_mut() else {
                return Ok(());
            };
            let ready = if must_wait { None } else { pending.try_landed() };
            if !must_wait && ready.is_none() {
                return Ok(());
            }
            let Some((pending, landing)) = self.0.pop_front() else {
                return Ok(());
            };
            let committed = match ready {
                Some(r) => r,
                None => pending.landed().await,
            };
            let mut committed = committed.map_err(Error::Store)?;
            if landing.relisted {
                committed.counts.unchanged = 0;
            }
            let counts = count(committed, report);
            // The fan-out looks for staged parents once a page has landed.
            run.wake.notify_one();
            report.counts.pages += 1;
            report.pass_completed |= landing.completes_pass;
            run.ctx.progress.update(run.stream.name, |p| {
                p.counts += Counts { pages: 1, ..counts };
            });
            tracing::debug!(
                inserted = counts.inserted,
                updated = counts.updated,
                unchanged = counts.unchanged,
                "page committed"
            );
        }
    }
}
