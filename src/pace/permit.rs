//! An admitted request, and the lane it asked in. Public within the crate only: the API client
//! asks the pace for a permit before each request (`Pace::admit`) and reports its answer on it.

use std::time::Duration;

use super::Pace;

/// Who is asking: a list walk's request goes before any fan-out request waiting for a place,
/// because its cursor is short-lived and the fan-out's work keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Walk,
    FanOut,
}

/// One admitted request; holds its place in flight until dropped.
pub struct Permit {
    pub(super) pace: Pace,
    pub(super) epoch: u64,
}

impl Permit {
    /// The answer was clean: the pace may grow.
    pub fn success(&self) {
        self.pace.grow();
    }

    /// The answer was a 429; see `Pace::throttled`.
    pub fn throttled(&self, retry_after: Option<Duration>) -> Duration {
        self.pace.throttled(self.epoch, retry_after)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.pace.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        drop(s);
        self.pace.freed.notify_waiters();
    }
}
