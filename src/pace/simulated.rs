//! A simulated API for the pace's tests: a fixed budget per second, counted from the first
//! request after the previous second ended, answering the rest with a 429.

use super::*;

/// The controller's settings in the tests: a first run at 5/s, a minute's pause on a 429.
pub(super) fn settings(burst: u32, max_retry_after_secs: u64) -> Settings {
    Settings {
        start_rate: 5.0,
        max_rate: 1_000.0,
        burst,
        max_concurrent: 4,
        rate_limited_wait: Duration::from_secs(60),
        max_retry_after: Duration::from_secs(max_retry_after_secs),
    }
}

/// `per_second` requests answered clean per second, the rest 429 with `retry_after`.
pub(super) struct Budget {
    pub(crate) per_second: u32,
    second: Instant,
    used: u32,
    /// Sent with every 429.
    pub(crate) retry_after: Option<Duration>,
}

impl Budget {
    pub(super) fn new(per_second: u32) -> Self {
        Self {
            per_second,
            second: Instant::now(),
            used: 0,
            retry_after: None,
        }
    }

    /// Answers one admitted request: clean, or 429 when over the budget (returns true).
    pub(super) fn answer(&mut self, p: Permit) -> bool {
        if Instant::now().duration_since(self.second) >= Duration::from_secs(1) {
            self.second = Instant::now();
            self.used = 0;
        }
        self.used += 1;
        let over = self.used > self.per_second;
        if over {
            p.throttled(self.retry_after);
        } else {
            p.success();
        }
        over
    }
}

/// `secs` of back-to-back requests to `api`: the 429s and the clean answers.
pub(super) async fn run(pace: &Pace, api: &mut Budget, secs: u64) -> (u32, u32) {
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut refused, mut clean) = (0, 0);
    while Instant::now() < end {
        if api.answer(pace.admit(Lane::Walk).await) {
            refused += 1;
        } else {
            clean += 1;
        }
    }
    (refused, clean)
}
