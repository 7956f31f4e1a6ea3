//! What a walk keeps between pages: the pages handed to the writer and not yet committed, and
//! the keys of its last few pages, to see a list that loops.

use super::commit::count;
use super::ctx::StreamRun;
use super::error::Error;
use super::report::StreamReport;
use crate::counts::Counts;
use crate::store;
use crate::streams::Item;

/// The item keys of a pass's last few pages, hashed: what `repeats` compares a page with.
#[derive(Default)]
pub(super) struct RecentPages(std::collections::VecDeque<Seen>);

/// One page's keys (hashed), and how many of them an earlier page in the window listed.
struct Seen {
    keys: std::collections::HashSet<u64>,
    repeated: usize,
}

impl RecentPages {
    /// Pages remembered: a loop of fresh cursors over up to this many pages is caught, and
    /// the share of repeats is judged over them.
    const PAGES: usize = 16;
    /// Fewer items than this in the window say nothing yet (a small list, a short page).
    const MIN_ITEMS: usize = 20;

    /// Whether half or more of the items of the pages in the window (this one included)
    /// were already listed by an earlier page in it; remembers this page. A first load's
    /// crawl (`sort=+created_at`) lists each item once, a few at a page's edge aside when rows
    /// shift under the cursor; a server handing out fresh cursors over the same items, or a
    /// window that slides by one item a page, repeats almost all of them.
    pub(super) fn repeats(&mut self, items: &[Item]) -> bool {
        use std::hash::BuildHasher as _;
        let hasher = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let keys: std::collections::HashSet<u64> = items.iter().map(|i| hasher.hash_one(&i.key)).collect();
        let repeated = keys
            .iter()
            .filter(|k| self.0.iter().any(|page| page.keys.contains(k)))
            .count();
        self.0.push_back(Seen { keys, repeated });
        if self.0.len() > Self::PAGES {
            self.0.pop_front();
        }
        let listed: usize = self.0.iter().map(|p| p.keys.len()).sum();
        let repeated: usize = self.0.iter().map(|p| p.repeated).sum();
        listed >= Self::MIN_ITEMS && 2 * repeated >= listed
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

/// Pages a walk may have handed to the writer and not yet seen land: enough for the writer to
/// group them (see `store::Writer`), few enough to keep memory flat (about 32 × 100 rows).
pub(super) const MAX_PAGES_IN_FLIGHT: usize = 32;

/// A walk's pages on their way to the database, oldest first, each with whether it completes
/// its pass.
#[derive(Default)]
pub(super) struct InFlight(std::collections::VecDeque<(store::Pending, bool)>);

impl InFlight {
    pub(super) fn push(&mut self, pending: store::Pending, completes_pass: bool) {
        self.0.push_back((pending, completes_pass));
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
            let Some((pending, completes_pass)) = self.0.pop_front() else {
                return Ok(());
            };
            let committed = match ready {
                Some(r) => r,
                None => pending.landed().await,
            };
            let counts = count(committed.map_err(Error::Store)?, report);
            // The fan-out looks for staged parents once a page has landed.
            run.wake.notify_one();
            report.counts.pages += 1;
            report.pass_completed |= completes_pass;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Row;

    fn page(keys: impl Iterator<Item = usize>) -> Vec<Item> {
        keys.map(|k| Item {
            row: Row {
                table: "bookings",
                record: Box::new(()),
                raw_json: "{}".into(),
                item_key: k.to_string(),
            },
            key: k.to_string(),
            created_at: None,
            updated_at: None,
        })
        .collect()
    }

    #[test]
    fn a_crawl_with_a_few_repeats_at_its_pages_edges_is_no_loop() {
        let mut recent = RecentPages::default();
        // Pages of 10, each re-listing the last 4 items of the page before (rows shifting back
        // under the cursor as earlier ones are removed): 40 % repeats.
        for n in 0..100 {
            let first = n * 6;
            assert!(!recent.repeats(&page(first..first + 10)), "page {n}");
        }
    }

    #[test]
    fn the_same_few_items_again_are_a_loop_by_the_third_page() {
        let mut recent = RecentPages::default();
        assert!(!recent.repeats(&page(0..9)));
        assert!(!recent.repeats(&page(0..9)), "18 items say nothing yet");
        assert!(recent.repeats(&page(0..9)));
    }

    #[test]
    fn a_window_sliding_by_one_item_a_page_is_a_loop_by_the_third_page() {
        let mut recent = RecentPages::default();
        assert!(!recent.repeats(&page(0..100)));
        assert!(!recent.repeats(&page(1..101)), "99 of 200 repeated");
        assert!(recent.repeats(&page(2..102)));
    }

    #[test]
    fn clearing_forgets_the_window() {
        let mut recent = RecentPages::default();
        recent.repeats(&page(0..20));
        recent.clear();
        assert!(!recent.repeats(&page(0..20)), "a restart re-lists its first page");
    }
}
