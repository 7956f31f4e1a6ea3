//! Spacing: the GCRA (generic cell rate algorithm). Each admission reserves the next slot at the
//! pace (the *theoretical arrival time*, `tat`); `burst` slots may be used at once after a quiet
//! spell. Never at a run's start nor right after a pause: a burst on top of a pace just under the
//! budget goes over it, and the slots a pause left unused are not the API's to give.

use std::time::Duration;

use tokio::time::Instant;

use super::state::{State, tolerance};

impl State {
    /// Reserves the next free slot at the pace, not before `now` nor before a pause's end:
    /// when the request may be sent.
    pub(super) fn reserve(&mut self, now: Instant, burst: u32) -> Instant {
        let base = self.paused_until.map_or(now, |p| p.max(now));
        let interval = Duration::from_nanos((1e9 / self.rate) as u64);
        let tolerance = tolerance(self.rate, burst);
        let slot = base.max(self.tat.checked_sub(tolerance).unwrap_or(self.tat));
        self.tat = self.tat.max(slot) + interval;
        slot
    }

    /// Pauses every admission for `wait` from `now` (a pause under way ends at the later of the
    /// two), counts the time paused, and grants no burst credit at its end. Returns when
    /// admissions resume.
    pub(super) fn pause(&mut self, now: Instant, wait: Duration, burst: u32) -> Instant {
        let until = now + wait;
        let from = self.paused_until.map_or(now, |p| p.max(now));
        self.paused += until.saturating_duration_since(from);
        let resume = self.paused_until.map_or(until, |p| p.max(until));
        self.paused_until = Some(resume);
        self.tat = self.tat.max(until + tolerance(self.rate, burst));
        resume
    }
}
