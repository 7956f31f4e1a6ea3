//! The controller's state: one value behind the controller's lock, and how a run starts it from
//! what the last run learned (`pace_state`), every figure read back checked before it steers.

use std::time::Duration;

use tokio::time::Instant;

use super::fit::Shot;
use super::{CUT, FLOOR, Learned, PROBE_FIRST, PROBE_MAX, RECOVERY, RESTART_QUIET, Settings};

/// The GCRA's tolerance at `rate`: how far ahead of the schedule `burst` slots may be used. Here
/// rather than with the GCRA (`gcra`), which schedules on a `State`, because a run's first
/// state is built with it.
pub(super) fn tolerance(rate: f64, burst: u32) -> Duration {
    // `rate` is at least FLOOR, so the interval is finite.
    Duration::from_nanos((1e9 / rate) as u64) * burst.saturating_sub(1)
}

pub(super) struct State {
    pub(super) rate: f64,
    /// The GCRA's theoretical arrival time: the next free slot.
    pub(super) tat: Instant,
    pub(super) paused_until: Option<Instant>,
    /// Bumped by every decision on a 429, so the other answers of requests admitted before it
    /// only count.
    pub(super) epoch: u64,
    /// Learned ceiling and when it was learned (where its CUBIC curve starts); `None` while in
    /// the first slow start.
    pub(super) ceiling: Option<(f64, Instant)>,
    pub(super) proven: Option<f64>,
    /// Holding a step above the learned ceiling.
    pub(super) probing: bool,
    /// The probe's step above the ceiling, as a share: [`super::PROBE_STEP`], doubling with each
    /// step that holds.
    pub(super) probe_step: f64,
    /// Time without a 429 the next probe waits for.
    pub(super) probe_wait: Duration,
    /// The ceiling slow start's 429 set awaits its next shot's clean spell (`Pace::clean_spell`).
    pub(super) confirming: bool,
    /// The end of the last 429's pause: since when the API has answered clean.
    pub(super) clean_since: Instant,
    /// The clean spell under way: since when, and its clean answers.
    pub(super) spell_start: Instant,
    pub(super) spell_answers: u32,
    /// The proof under way: since when, and its clean answers.
    pub(super) proof_start: Instant,
    pub(super) proof_answers: u32,
    /// The end of the burst the last cut answered (see `Pace::throttled`).
    pub(super) burst_until: Instant,
    pub(super) last_growth: Instant,
    pub(super) concurrency: usize,
    pub(super) in_flight: usize,
    /// Walk requests waiting for a place in flight; fan-out requests wait while any do.
    pub(super) walks_waiting: usize,
    pub(super) last_concurrency_change: Instant,
    pub(super) window_start: Instant,
    pub(super) window_count: u32,
    /// The window before the current one (none after a pause): with it, a 429 tells the rate
    /// really sent over the last second or two.
    pub(super) previous_start: Instant,
    pub(super) previous_count: u32,
    /// Requests per second really admitted, smoothed.
    pub(super) measured: f64,
    pub(super) peak: f64,
    pub(super) start: f64,
    /// Clean answers since the last pause began.
    pub(super) clean_since_pause: u64,
    /// Clean answers since the last 429 (any, in a burst or not).
    pub(super) clean_since_429: u32,
    pub(super) rate_limited: u64,
    pub(super) paused: Duration,
    /// Clean answers since the last quiet spell (see `fit.rs`).
    pub(super) shot: Shot,
    /// The shot the last cut ended, which the current one follows.
    pub(super) last_shot: Option<Shot>,
}

impl State {
    /// The state a run starts with: the learned pace if any, else the configured one.
    /// `settings.max_rate` is already at least [`FLOOR`].
    pub(super) fn new(settings: &Settings, learned: Option<Learned>, now: Instant) -> Self {
        // A value read back from the file steers the run: anything but a positive finite rate is
        // as good as none.
        let sane = |r: Option<f64>| r.filter(|r| r.is_finite() && *r > 0.0);
        let (rate, ceiling, proven, concurrency, probe_wait, clean_for) = match learned {
            Some(l) => {
                let rate = sane(Some(l.rate))
                    .unwrap_or(settings.start_rate)
                    .clamp(FLOOR, settings.max_rate);
                // Resume the curve where the learned rate sits on it, not at its start.
                let ceiling = sane(l.ceiling).map(|c| {
                    let c = c.max(FLOOR);
                    let left = ((1.0 - rate / c) / (1.0 - CUT)).clamp(0.0, 1.0).cbrt();
                    (c, now - RECOVERY.mul_f64(1.0 - left))
                });
                (
                    rate,
                    ceiling,
                    sane(l.proven).map(|p| p.max(FLOOR)),
                    l.concurrency.clamp(1, settings.max_concurrent.max(1)),
                    l.probe_wait.clamp(PROBE_FIRST, PROBE_MAX),
                    // A run that follows the last one at once sends for RESTART_QUIET before a
                    // probe once a ceiling is known (a run restarted after a kill does not open
                    // with a 429); without one, for PROBE_FIRST. A later run keeps the schedule.
                    {
                        let wait = l.probe_wait.clamp(PROBE_FIRST, PROBE_MAX);
                        let quiet = if l.ceiling.is_some() {
                            RESTART_QUIET
                        } else {
                            PROBE_FIRST
                        };
                        if l.saved_ago.is_none_or(|ago| ago < RESTART_QUIET) {
                            l.clean_for.min(wait.saturating_sub(quiet))
                        } else {
                            l.clean_for
                        }
                    },
                )
            }
            None => (
                settings.start_rate.clamp(FLOOR, settings.max_rate),
                None,
                None,
                settings.max_concurrent.max(1),
                PROBE_FIRST,
                Duration::ZERO,
            ),
        };
        // No burst credit at start: the first `burst` requests are spaced like the rest, since a
        // burst on top of a pace just under the budget goes over it. At a learned pace the first
        // waits one interval too: the run before may have sent its last request just now (a
        // restart after a kill), and two requests closer than the pace would go over it.
        let first = if learned.is_some() {
            Duration::from_nanos((1e9 / rate) as u64)
        } else {
            Duration::ZERO
        };
        let tat = now + tolerance(rate, settings.burst) + first;
        let clean_since = now.checked_sub(clean_for).unwrap_or(now);
        Self {
            rate,
            tat,
            paused_until: None,
            epoch: 0,
            ceiling,
            proven,
            probing: false,
            probe_step: super::PROBE_STEP,
            probe_wait,
            confirming: false,
            clean_since,
            spell_start: now,
            spell_answers: 0,
            proof_start: now,
            proof_answers: 0,
            burst_until: now,
            last_growth: now,
            concurrency,
            in_flight: 0,
            walks_waiting: 0,
            last_concurrency_change: now,
            window_start: now,
            window_count: 0,
            previous_start: now,
            previous_count: 0,
            measured: rate,
            peak: rate,
            start: rate,
            clean_since_pause: 0,
            clean_since_429: 0,
            rate_limited: 0,
            paused: Duration::ZERO,
            shot: Shot::new(now),
            last_shot: None,
        }
    }

    /// Restarts, from `from` (a pause's end), what a 429 interrupts: neither a proof nor a
    /// clean spell spans a 429, nor does a measure of the rate sent span a pause (`paused`).
    pub(super) fn restart_measures(&mut self, from: Instant, paused: bool) {
        self.proof_start = from;
        self.proof_answers = 0;
        self.spell_start = from;
        self.spell_answers = 0;
        self.clean_since = from;
        if paused {
            self.shot = Shot::new(from);
            self.window_start = from;
            self.window_count = 0;
            self.previous_start = from;
            self.previous_count = 0;
        }
    }
}
