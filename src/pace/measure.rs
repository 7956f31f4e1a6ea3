//! Measuring the rate really sent: admissions are counted in windows of [`MEASURE`], smoothed
//! into `measured` (the pace never grows beyond twice it), and the last window or two tell what
//! a 429 was drawn at. No measure spans a pause (`State::restart_measures`).

use std::time::Duration;

use tokio::time::Instant;

use super::FLOOR;
use super::state::State;

/// The window over which the rate really sent is measured.
pub(super) const MEASURE: Duration = Duration::from_secs(1);
/// The fewest requests a measurement of the rate really sent counts.
const MEASURE_REQUESTS: u32 = 5;

impl State {
    /// Counts an admission sent at `now`, closing the window when it is [`MEASURE`] old.
    pub(super) fn count_admission(&mut self, now: Instant) {
        if now.saturating_duration_since(self.window_start) >= MEASURE {
            let secs = now.saturating_duration_since(self.window_start).as_secs_f64();
            let sample = f64::from(self.window_count) / secs;
            let sparse = secs > 4.0 * MEASURE.as_secs_f64();
            self.measured = if sparse {
                sample
            } else {
                0.5 * self.measured + 0.5 * sample
            };
            // A window of sparse traffic says nothing about the last second or two.
            (self.previous_start, self.previous_count) = if sparse {
                (now, 0)
            } else {
                (self.window_start, self.window_count)
            };
            self.window_start = now;
            self.window_count = 0;
        }
        self.window_count += 1;
    }

    /// The rate really sent over the last one to four seconds, when enough requests tell (and
    /// none of that time was a pause): what a 429 was drawn at.
    pub(super) fn drawn(&self, now: Instant) -> Option<f64> {
        let span = now.saturating_duration_since(self.previous_start);
        let n = self.previous_count + self.window_count;
        (span >= MEASURE && span <= 4 * MEASURE && n >= MEASURE_REQUESTS)
            .then(|| f64::from(n) / span.as_secs_f64())
    }

    /// The rate a 429 hit: what was really being sent, over the last second or two when enough
    /// traffic tells (`drawn`; during a climb that is under the pace of the moment, which
    /// overshot), else over the current window (a rate nobody used says nothing about the
    /// budget), else the pace.
    pub(super) fn hit(&self, now: Instant, drawn: Option<f64>) -> f64 {
        match drawn {
            Some(drawn) => self.rate.min(drawn),
            None => {
                let elapsed = now.saturating_duration_since(self.window_start);
                let sent = if elapsed >= MEASURE && self.window_count >= MEASURE_REQUESTS {
                    f64::from(self.window_count) / elapsed.as_secs_f64()
                } else {
                    self.rate
                };
                self.rate.min(sent * 1.25)
            }
        }
        .max(FLOOR)
    }
}
