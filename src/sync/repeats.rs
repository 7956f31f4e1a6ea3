//! A first load's crawl that keeps listing what it already listed: fresh cursors over the
//! same items, or a window that slides by one item a page. A first load appends (its key set
//! aside), so without this it would store the same items until the run's ceiling, every run.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher as _;

use crate::streams::Item;

/// The item keys of a crawl's last pages, hashed: what `repeats` compares a page with.
#[derive(Default)]
pub(super) struct RecentPages(VecDeque<Seen>);

/// One page's keys (hashed), how many items it listed, and how many of those an earlier page
/// in the window, or the page itself, had already listed.
struct Seen {
    keys: HashSet<u64>,
    listed: usize,
    repeated: usize,
}

impl RecentPages {
    /// The window holds at least this many pages...
    const PAGES: usize = 16;
    /// ...and at least this many items, however short the pages (a one-item page each time).
    const LISTINGS: usize = 200;
    /// And never more pages than this: the window's memory is bounded.
    const MAX_PAGES: usize = 1_024;
    /// Fewer items than this in the window say nothing yet (a small list).
    const MIN_ITEMS: usize = 20;

    /// Whether half or more of the items the window's pages listed (this one included) were
    /// listings of a key already listed in the window; remembers this page. A first load's
    /// crawl (`sort=+created_at`) lists each item once. Every listing counts, so a page that
    /// lists one id a hundred times is a hundred repeats less one.
    pub(super) fn repeats(&mut self, items: &[Item]) -> bool {
        let hasher = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let mut keys = HashSet::with_capacity(items.len());
        let mut repeated = 0;
        for item in items {
            let key = hasher.hash_one(&item.key);
            if !keys.insert(key) || self.0.iter().any(|page| page.keys.contains(&key)) {
                repeated += 1;
            }
        }
        self.0.push_back(Seen {
            keys,
            listed: items.len(),
            repeated,
        });
        let mut listed: usize = self.0.iter().map(|p| p.listed).sum();
        while let Some(oldest) = self.0.front() {
            let enough = self.0.len() > Self::PAGES && listed - oldest.listed >= Self::LISTINGS;
            if !enough && self.0.len() <= Self::MAX_PAGES {
                break;
            }
            listed -= oldest.listed;
            self.0.pop_front();
        }
        let repeated: usize = self.0.iter().map(|p| p.repeated).sum();
        listed >= Self::MIN_ITEMS && 2 * repeated >= listed
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Row;

    fn item(key: String) -> Item {
        Item {
            row: Row {
                table: "bookings",
                record: Box::new(()),
                raw_json: "{}".into(),
                item_key: key.clone(),
            },
            key,
            created_at: None,
            updated_at: None,
        }
    }

    fn page(keys: impl Iterator<Item = usize>) -> Vec<Item> {
        keys.map(|k| item(k.to_string())).collect()
    }

    #[test]
    fn a_crawl_with_a_few_repeats_at_its_pages_edges_is_no_loop() {
        let mut recent = RecentPages::default();
        // Pages of 10, each re-listing the last 4 items of the page before: 40 % repeats.
        for n in 0..100 {
            let first = n * 6;
            assert!(!recent.repeats(&page(first..first + 10)), "page {n}");
        }
        // One-item pages of fresh items, a thousand of them.
        for n in 0..1_000 {
            assert!(!recent.repeats(&page(10_000 + n..10_001 + n)), "page {n}");
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
    fn one_item_pages_cycling_over_nine_ids_are_a_loop() {
        let mut recent = RecentPages::default();
        let looped = (0..30).position(|n| recent.repeats(&page(n % 9..n % 9 + 1)));
        assert_eq!(looped, Some(19), "at the twentieth listing");
    }

    #[test]
    fn a_page_listing_one_id_a_hundred_times_is_a_loop() {
        let mut recent = RecentPages::default();
        assert!(recent.repeats(&page(std::iter::repeat_n(7, 100))));
    }

    #[test]
    fn clearing_forgets_the_window() {
        let mut recent = RecentPages::default();
        recent.repeats(&page(0..20));
        recent.clear();
        assert!(!recent.repeats(&page(0..20)), "a restart re-lists its first page");
    }
}
