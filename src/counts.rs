//! The one counter type of a run: what a commit wrote, what a stream did, what a run did.
//!
//! The store fills the row counts of each commit, the sync adds its pages and requests, and
//! every total is a sum of these (`+=`, `Sum`, which name every field, so a new counter cannot
//! be left out of a sum). The log line, the run's row in `sync_runs`, the live progress and the
//! metrics file each show the fields they name; the run row's `rate_limited` is the pace's,
//! which also counts the token endpoint's 429s.

use serde::Serialize;

/// Additive counters. Each is a plain count; adding two `Counts` adds them field by field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Rows written for the first time.
    pub inserted: u64,
    /// Rows whose content changed.
    pub updated: u64,
    /// Rows listed again with no change (not rewritten); a first load's catch-up page, which
    /// lists again what the load stored moments before, counts none.
    pub unchanged: u64,
    /// Rows marked `removed_at` (confirmed gone), and per-parent rows deleted because the
    /// parent's new list no longer holds them.
    pub removed: u64,
    /// Items put in quarantine for the first time.
    pub quarantined: u64,
    /// Parents staged for the fan-out (orders waiting for their line items and payments).
    pub staged: u64,
    /// Pages committed (for a per-parent stream: parents whose list it fetched).
    pub pages: u64,
    /// Times a refused or stale cursor made the list walk start again.
    pub cursor_restarts: u64,
    /// HTTP requests sent.
    pub requests: u64,
    /// Requests sent again after a failure.
    pub retries: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Items stamped further ahead of the clocks than `sync.max_clock_skew_secs` (stored, never
    /// a high-water mark).
    pub(crate) future_dated: u64,
    /// Rows a listing inserted or changed that a webhook delivery should have brought (its
    /// stream has events, it changed while the receiver was up, and no delivery named it).
    pub(crate) webhook_missed: u64,
}

impl Counts {
    /// Rows the API listed and the store read: inserted, updated or unchanged.
    pub(crate) fn rows(&self) -> u64 {
        self.inserted + self.updated + self.unchanged
    }

    /// The row changes by name, in the order `sync_runs` and the metrics file show them.
    pub(crate) fn changes(&self) -> [(&'static str, u64); 4] {
        [
            ("inserted", self.inserted),
            ("updated", self.updated),
            ("unchanged", self.unchanged),
            ("removed", self.removed),
        ]
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        // Destructured, so a new field cannot be forgotten here.
        let Self {
            inserted,
            updated,
            unchanged,
            removed,
            quarantined,
            staged,
            pages,
            cursor_restarts,
            requests,
            retries,
            rate_limited,
            future_dated,
            webhook_missed,
        } = o;
        self.inserted += inserted;
        self.updated += updated;
        self.unchanged += unchanged;
        self.removed += removed;
        self.quarantined += quarantined;
        self.staged += staged;
        self.pages += pages;
        self.cursor_restarts += cursor_restarts;
        self.requests += requests;
        self.retries += retries;
        self.rate_limited += rate_limited;
        self.future_dated += future_dated;
        self.webhook_missed += webhook_missed;
    }
}

impl std::iter::Sum for Counts {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |mut total, c| {
            total += c;
            total
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_adds_every_field() {
        let one = Counts {
            inserted: 1,
            updated: 2,
            unchanged: 3,
            removed: 4,
            quarantined: 5,
            staged: 6,
            pages: 7,
            cursor_restarts: 8,
            requests: 9,
            retries: 10,
            rate_limited: 11,
            future_dated: 12,
            webhook_missed: 13,
        };
        let sum: Counts = [one, one].into_iter().sum();
        // Serialized, every field is compared: doubling each must double the whole.
        let doubled = serde_json::to_value(sum).unwrap();
        for (field, v) in serde_json::to_value(one).unwrap().as_object().unwrap() {
            assert_eq!(doubled[field], v.as_u64().unwrap() * 2, "{field}");
        }
        assert_eq!(sum.rows(), 12);
        assert_eq!(sum.changes()[3], ("removed", 8));
    }
}
