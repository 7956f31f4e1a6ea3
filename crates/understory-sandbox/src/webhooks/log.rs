//! The record of every delivery the sandbox made or decided not to make, for tests and
//! benchmarks: what was sent where, when the event arose, and how each attempt went.

use crate::poison::Unpoisoned as _;
use std::sync::Mutex;
use std::time::SystemTime;

/// One event for one subscription.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The event's `id`, sent as `webhook-id`: the same on every attempt and every copy.
    pub webhook_id: String,
    /// `v1.booking.updated` and so on.
    pub event_type: String,
    pub subscription_id: String,
    /// The id of the booking, event or experience the event is about.
    pub item_id: String,
    /// When the event arose: right after the change, once the world's lock was released.
    pub emitted_at: SystemTime,
    /// Never sent (`drop_share`).
    pub dropped: bool,
    /// Sent twice under the same `webhook-id` (`duplicate_share`).
    pub duplicated: bool,
    /// Held back `delay_ms` before its first attempt (`delay_share`).
    pub delayed: bool,
    /// Every attempt of every copy, in the order they were answered.
    pub attempts: Vec<Attempt>,
    /// Copies that got a 2xx answer.
    pub delivered: u32,
    /// Copies given up after the last retry of the schedule.
    pub given_up: u32,
}

impl Delivery {
    /// Copies sent: none when dropped, two when duplicated.
    pub fn copies(&self) -> u32 {
        match (self.dropped, self.duplicated) {
            (true, _) => 0,
            (false, true) => 2,
            (false, false) => 1,
        }
    }

    /// Whether nothing more will happen to it: every copy delivered or given up.
    pub fn settled(&self) -> bool {
        self.delivered + self.given_up == self.copies()
    }
}

/// One POST of one copy.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 0, or 1 for the second copy of a duplicated delivery.
    pub copy: u32,
    /// When it was sent (its `webhook-timestamp`, to the second).
    pub at: SystemTime,
    /// The HTTP status answered, if any.
    pub status: Option<u16>,
    /// Why there was no answer (a timeout, a refused connection).
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The deliveries so far, by their place in the log.
#[derive(Default)]
pub(crate) struct Log(Mutex<Vec<Delivery>>);

impl Log {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Delivery>> {
        self.0.locked()
    }

    /// Adds a delivery; returns its place.
    pub(crate) fn push(&self, d: Delivery) -> usize {
        let mut log = self.lock();
        log.push(d);
        log.len() - 1
    }

    /// Records an attempt of delivery `slot`, and whether it settled that copy.
    pub(crate) fn attempted(&self, slot: usize, attempt: Attempt, gave_up: bool) {
        let mut log = self.lock();
        let d = &mut log[slot];
        if attempt.succeeded() {
            d.delivered += 1;
        } else if gave_up {
            d.given_up += 1;
        }
        d.attempts.push(attempt);
    }

    pub(crate) fn all(&self) -> Vec<Delivery> {
        self.lock().clone()
    }
}
