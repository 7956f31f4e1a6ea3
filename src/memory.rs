//! The run's memory budget: the bytes the API sent that are not yet in the database, counted
//! against one ceiling (`sync.max_in_flight_bytes`), so that what a run holds is bounded in
//! bytes and not only in items or pages.
//!
//! A *hold* is one piece of work's share: a walk's page, or one parent's per-parent lists (held
//! whole until they are committed with it). It counts a body once it is read and parsed, and
//! gives its bytes back when it is dropped, which the writer does once its commit is written.
//!
//! Before each request the hold waits for *room*: the bytes counted, plus what the requests
//! already under way hold or are expected to bring, plus one more typical body (learned from the
//! bodies read so far), must fit under the ceiling. The guess only decides when a request is
//! sent; the body is then counted as it is read, chunk by chunk, and a body that outgrows its
//! room takes more room before each chunk. When there is none (and this hold may not go on past
//! the ceiling, below), the request gives its room back, drops the connection, and is asked
//! again once the room for the largest body allowed (`api.max_response_bytes`) is free. So a
//! run of tiny bodies that teaches a tiny guess cannot let big bodies past the ceiling: what is
//! read and not yet written fits under it, whatever the history.
//!
//! Waiting must not close a circle: two half-fetched lists can each hold half the budget and
//! need more. So a hold goes through three stages: *growing* (its requests are under way),
//! *sealed* (its work has all its bytes: a page read, a parent's lists complete) and *queued*
//! (handed to the writer, which gives its bytes back without waiting for anything). The oldest
//! growing hold may go on past the ceiling whenever the queued bytes alone are under it: the
//! writer always drains those, the oldest growing hold then always finishes, and a sealed hold
//! (a walk's page read, whose commit waits for the next page's fetch) blocks nobody.
//!
//! What the count can pass the ceiling by is the oldest growing hold's own: one parent's lists
//! are refused once they add up past the ceiling (`api::paging`), so at most the ceiling plus
//! the bodies its requests are reading.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::poison::Unpoisoned as _;

use tokio::sync::Notify;

/// The bytes a run may hold at once; cheap to clone, one per run.
#[derive(Debug, Clone)]
pub(crate) struct Budget(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    ceiling: usize,
    state: Mutex<State>,
    /// Told whenever bytes are given back or a hold ends, so the waiters look again.
    freed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes counted over all holds.
    used: usize,
    /// Bytes the requests under way hold or are expected to bring: a typical body each before
    /// it is read, then what it has read if that is more.
    reserved: usize,
    /// The size of a typical body: a running mean of the bodies read, halving the weight of
    /// the older ones at each body.
    typical: usize,
    /// The most `used` reached this run.
    peak: usize,
    /// Each live hold's bytes and stage, by ticket: the smallest ticket is the oldest hold.
    holds: BTreeMap<u64, (usize, Stage)>,
    next: u64,
}

/// Where a hold's work is (see the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Growing,
    Sealed,
    Queued,
}

impl State {
    /// Whether `ticket` may go on past the ceiling: the oldest growing hold, while the bytes
    /// waiting for the writer alone are under the ceiling.
    fn may_pass(&self, ticket: u64, ceiling: usize) -> bool {
        let oldest = self
            .holds
            .iter()
            .find(|(_, (_, stage))| *stage == Stage::Growing)
            .map(|(t, _)| *t);
        let queued: usize = self
            .holds
            .values()
            .filter(|(_, stage)| *stage == Stage::Queued)
            .map(|(n, _)| n)
            .sum();
        oldest == Some(ticket) && queued < ceiling
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.locked()
    }
}

impl Budget {
    /// A budget of `ceiling` bytes, whose first requests each expect a body of `first_guess`
    /// bytes (the largest allowed is the safe guess: the run's first bodies teach it the rest).
    pub(crate) fn new(ceiling: usize, first_guess: usize) -> Self {
        Self(Arc::new(Shared {
            ceiling,
            state: Mutex::new(State {
                typical: first_guess.min(ceiling),
                ..State::default()
            }),
            freed: Notify::new(),
        }))
    }

    /// A new hold, younger than every live one.
    pub(crate) fn hold(&self) -> Held {
        let mut s = self.0.state();
        let ticket = s.next;
        s.next += 1;
        s.holds.insert(ticket, (0, Stage::Growing));
        Held {
            budget: Some(Arc::clone(&self.0)),
            ticket,
        }
    }

    /// The bytes counted now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.0.state().used
    }

    /// The most bytes counted at once so far.
    #[cfg(test)]
    pub(crate) fn peak(&self) -> usize {
        self.0.state().peak
    }
}

/// One piece of work's bytes, counted until it is dropped. `Held::default()` belongs to no
/// budget: it never waits and counts nothing (a request too small to matter, a test).
#[derive(Debug, Default)]
pub struct Held {
    budget: Option<Arc<Shared>>,
    ticket: u64,
}

impl Held {
    /// Waits until the budget has room for one more typical body, or this hold may go on past
    /// the ceiling (the oldest growing, while the writer's backlog is under it); the body is
    /// reserved until the room is filled or dropped (the request failed).
    pub(crate) async fn room(&self) -> Room<'_> {
        self.room_of(None).await
    }

    /// `room`, for a body of `bytes`: a request asked again after its body outgrew the room
    /// a typical one left (`Room::grow`) reserves the largest body allowed.
    pub(crate) async fn room_for(&self, bytes: usize) -> Room<'_> {
        self.room_of(Some(bytes)).await
    }

    async fn room_of(&self, bytes: Option<usize>) -> Room<'_> {
        let Some(b) = &self.budget else {
            return Room {
                held: self,
                reserved: 0,
            };
        };
        loop {
            // Armed before looking, so bytes given back right after the look still wake us.
            let freed = b.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = b.state();
                let want = bytes.unwrap_or(s.typical);
                if s.used + s.reserved + want <= b.ceiling || s.may_pass(self.ticket, b.ceiling) {
                    s.reserved += want;
                    return Room {
                        held: self,
                        reserved: want,
                    };
                }
            }
            freed.await;
        }
    }

    /// Counts `n` more bytes.
    fn add(&self, n: usize) {
        let Some(b) = &self.budget else { return };
        let mut s = b.state();
        if let Some((mine, _)) = s.holds.get_mut(&self.ticket) {
            *mine += n;
            s.used += n;
            s.peak = s.peak.max(s.used);
        }
    }

    /// Marks the work complete: its bytes stay counted until it is dropped, but it no longer
    /// grows, so the next oldest may go on past the ceiling instead of it.
    pub(crate) fn seal(&self) {
        self.stage(Stage::Sealed);
    }

    /// Marks the work handed to the writer, which drops it once written (`store::Writer`).
    pub(crate) fn queue(&self) {
        self.stage(Stage::Queued);
    }

    fn stage(&self, stage: Stage) {
        let Some(b) = &self.budget else { return };
        if let Some((_, at)) = b.state().holds.get_mut(&self.ticket) {
            *at = stage;
        }
        b.freed.notify_waiters();
    }

    /// The bytes this hold counts.
    pub(crate) fn bytes(&self) -> usize {
        self.budget
            .as_ref()
            .and_then(|b| b.state().holds.get(&self.ticket).map(|(n, _)| *n))
            .unwrap_or(0)
    }
}

/// Room made for one request's body: filled with what it read, or given back when dropped.
#[must_use = "room is given back when dropped"]
#[derive(Debug)]
pub(crate) struct Room<'a> {
    held: &'a Held,
    reserved: usize,
}

impl Room<'_> {
    /// Makes the room `total` bytes, for a body read so far to `total`: true when it is (it
    /// was already, the budget has room, or this hold may go on past the ceiling), false when
    /// the request must give its room back and wait (`Held::room_for`).
    pub(crate) fn grow(&mut self, total: usize) -> bool {
        let Some(b) = &self.held.budget else {
            return true;
        };
        if total <= self.reserved {
            return true;
        }
        let extra = total - self.reserved;
        let mut s = b.state();
        if s.used + s.reserved + extra <= b.ceiling || s.may_pass(self.held.ticket, b.ceiling) {
            s.reserved += extra;
            self.reserved = total;
            true
        } else {
            false
        }
    }

    /// Counts the `n` bytes read into the hold, in place of the typical body reserved, and
    /// learns from `n` what a typical body is.
    pub(crate) fn fill(self, n: usize) {
        self.held.add(n);
        if let Some(b) = &self.held.budget {
            let mut s = b.state();
            s.typical = s.typical / 2 + n / 2;
        }
        // Dropping gives the reservation back.
    }
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        let Some(b) = &self.held.budget else { return };
        b.state().reserved -= self.reserved;
        b.freed.notify_waiters();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(b) = &self.budget else { return };
        {
            let mut s = b.state();
            if let Some((mine, _)) = s.holds.remove(&self.ticket) {
                s.used -= mine;
            }
        }
        b.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Whether `room` returns within a moment (the paused clock makes the moment free).
    async fn gets_room(h: &Held) -> bool {
        tokio::time::timeout(Duration::from_millis(10), h.room())
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_waits_at_the_ceiling_and_goes_on_when_bytes_are_given_back() {
        let budget = Budget::new(100, 10);
        let a = budget.hold();
        let b = budget.hold();
        assert!(gets_room(&b).await);
        a.add(60);
        b.add(40);
        assert_eq!((budget.used(), a.bytes(), b.bytes()), (100, 60, 40));
        // At the ceiling: the younger hold waits, the oldest may go on.
        assert!(!gets_room(&b).await);
        assert!(gets_room(&a).await);
        let c = budget.hold();
        let waiting = tokio::spawn(async move {
            drop(c.room().await);
            c
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        drop(a);
        let c = tokio::time::timeout(Duration::from_millis(10), waiting)
            .await
            .expect("room once bytes are given back")
            .unwrap();
        assert_eq!(budget.used(), 40);
        drop((b, c));
        assert_eq!((budget.used(), budget.peak()), (0, 100));
    }

    #[tokio::test(start_paused = true)]
    async fn two_half_fetched_lists_cannot_wait_on_each_other() {
        // Each holds half its list and needs more: the oldest goes on past the ceiling, ends,
        // and the other then has room.
        let budget = Budget::new(100, 10);
        let first = budget.hold();
        let second = budget.hold();
        first.add(50);
        second.add(50);
        assert!(!gets_room(&second).await);
        assert!(gets_room(&first).await);
        first.add(80);
        assert_eq!(budget.used(), 180);
        drop(first);
        assert!(gets_room(&second).await, "the younger is now the oldest");
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_read_and_waiting_to_be_written_does_not_hold_the_next_one_back() {
        // The walk's page is read (sealed) and waits for the next page's fetch before it is
        // handed to the writer: the next page, not the sealed one, is then the oldest to grow.
        let budget = Budget::new(100, 10);
        let page = budget.hold();
        let parent = budget.hold();
        let ahead = budget.hold();
        page.add(50);
        parent.add(50);
        assert!(!gets_room(&ahead).await);
        page.seal();
        assert!(gets_room(&parent).await, "the oldest growing hold goes on");
        parent.seal();
        assert!(gets_room(&ahead).await);
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_larger_than_the_ceiling_goes_on_alone() {
        let budget = Budget::new(10, 10);
        let big = budget.hold();
        assert!(gets_room(&big).await);
        big.add(1_000);
        let next = budget.hold();
        assert!(!gets_room(&next).await);
        drop(big);
        assert!(gets_room(&next).await);
    }

    #[tokio::test(start_paused = true)]
    async fn while_the_writers_backlog_fills_the_budget_even_the_oldest_waits() {
        // Lists finished one after another and queued faster than they are written: the
        // oldest growing hold goes on past the ceiling only while the backlog is under it.
        let budget = Budget::new(100, 10);
        let written = budget.hold();
        let next = budget.hold();
        written.add(100);
        written.seal();
        assert!(
            gets_room(&next).await,
            "sealed, not queued: it may wait on this fetch"
        );
        written.queue();
        assert!(!gets_room(&next).await);
        drop(written);
        assert!(gets_room(&next).await);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_under_way_reserve_a_typical_body_and_teach_it() {
        let budget = Budget::new(100, 40);
        let (a, b, c) = (budget.hold(), budget.hold(), budget.hold());
        let ra = a.room().await;
        let rb = b.room().await;
        // 80 reserved: a third body of 40 would not fit (and `c` is not the oldest).
        assert!(!gets_room(&c).await);
        ra.fill(10);
        assert_eq!(a.bytes(), 10);
        // Typical now 25: 10 counted + 40 reserved + 25 fits.
        assert!(gets_room(&c).await);
        drop(rb);
        assert_eq!(budget.used(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_larger_than_the_guess_takes_room_as_it_is_read_and_only_while_there_is_some() {
        // Tiny bodies taught a tiny guess; then every request's body is big.
        let budget = Budget::new(100, 1);
        let (a, b, c) = (budget.hold(), budget.hold(), budget.hold());
        let mut ra = a.room().await;
        let mut rb = b.room().await;
        let mut rc = c.room().await;
        assert!(rb.grow(60), "room under the ceiling");
        assert!(
            !rc.grow(60),
            "not the oldest, and no room left: it must give its room back"
        );
        drop(rc);
        assert!(ra.grow(90), "the oldest growing hold goes on past the ceiling");
        assert!(!gets_room_for(&c, 60).await, "the largest body waits for room");
        rb.fill(60);
        drop(ra);
        assert_eq!(budget.used(), 60);
        drop(b);
        assert!(gets_room_for(&c, 60).await);
    }

    async fn gets_room_for(h: &Held, bytes: usize) -> bool {
        tokio::time::timeout(Duration::from_millis(10), h.room_for(bytes))
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_of_no_budget_counts_nothing_and_never_waits() {
        let h = Held::default();
        h.add(1 << 40);
        assert_eq!(h.bytes(), 0);
        assert!(gets_room(&h).await);
        assert!(h.room().await.grow(1 << 40));
    }
}
