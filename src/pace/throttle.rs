//! A 429: the first of a burst cuts the pace and pauses every stream; the rest of the burst only
//! pause, unless they are news about the budget.

use std::time::Duration;

use tokio::time::Instant;

use super::state::State;
use super::{CLEAN_ANSWERS, CLIMB_MARGIN, CUT, FLOOR, PROBE_BACKOFF, PROBE_FIRST, PROBE_MAX, Pace, RECOVERY};

impl Pace {
    /// A 429 on a request admitted in `epoch`. Returns how long the pause lasts from now.
    ///
    /// The first 429 of a burst cuts the pace and pauses everything; requests admitted before
    /// that decision only count. A 429 right after a pause, before any clean answer, is the
    /// server's penalty outlasting ours: it pauses again and cuts nothing. So does a 429 within
    /// the burst a cut answered (the API's penalty, [`super::Settings::rate_limited_wait`], from
    /// the cut, however short the server's `Retry-After`: `Retry-After: 0` ends the pause, not
    /// the burst) — unless the pace is still above the proven rate and a full second of traffic
    /// at it has been measured, or the 429 ends a run of [`CLEAN_ANSWERS`] clean answers or more
    /// (the budget's edge after a short `Retry-After`): either is news about the budget.
    pub(super) fn throttled(&self, epoch: u64, retry_after: Option<Duration>) -> Duration {
        let mut s = self.lock();
        let now = Instant::now();
        s.rate_limited += 1;
        let wait = retry_after.map_or(self.settings.rate_limited_wait, |d| {
            d.min(self.settings.max_retry_after)
        });
        if epoch != s.epoch {
            return s
                .paused_until
                .map_or(Duration::ZERO, |p| p.saturating_duration_since(now));
        }
        s.epoch += 1;
        let drawn = s.drawn(now);
        let penalty_outlasting = s.paused_until.is_some() && s.clean_since_pause == 0;
        let in_burst = now < s.burst_until;
        let still_above_proven = drawn.is_some() && s.proven.is_some_and(|p| s.rate > p);
        // A run of clean answers ended by a 429 is the budget's edge, not a flood (that answers
        // one clean between two 429s): after a short `Retry-After` it is news about the budget.
        let at_the_edge = std::mem::take(&mut s.clean_since_429) >= CLEAN_ANSWERS;
        if penalty_outlasting || (in_burst && !still_above_proven && !at_the_edge) {
            self.pause_again(&mut s, now, wait);
        } else {
            self.cut(&mut s, now, wait, drawn);
        }
        wait
    }

    /// A 429 that is no news: pause every stream again, cut nothing.
    fn pause_again(&self, s: &mut State, now: Instant, wait: Duration) {
        s.confirming = false;
        self.pause_all(s, now, wait, !wait.is_zero());
        tracing::warn!(
            pause_secs = wait.as_secs_f64(),
            "rate limited again within the same burst: pausing every stream, cutting nothing"
        );
    }

    /// A 429 that is news about the budget: set the ceiling, cut the pace (and the concurrency
    /// cap if it was full), pause every stream, and begin a burst.
    fn cut(&self, s: &mut State, now: Instant, wait: Duration, drawn: Option<f64>) {
        // The shot this 429 ends, and with the one before it, what the budget is (`fit.rs`).
        s.shot.reach(now);
        let ended = std::mem::replace(&mut s.shot, super::fit::Shot::new(now));
        let fitted = s
            .last_shot
            .as_ref()
            .and_then(|first| super::fit::budget(first, &ended));
        // A 429 that ends a climb doubling every two seconds (slow start, or a probe growing as
        // it does): the window that refused is at least the last second's, whose count is what
        // the API accepted in it (the rate measured over the last second or two lags behind).
        // It sets the ceiling afresh, just under that count.
        let failed_probe = s.probing;
        // Slow start's 429 and a failed probe resume flat at the ceiling they set; any other cut
        // climbs back to it.
        let flat = s.ceiling.is_none() || failed_probe;
        let climbed = CLIMB_MARGIN * s.hit(now, drawn).max(ended.last_second()).min(s.rate);
        let ceiling = match s.ceiling {
            None => climbed,
            // A failed probe goes back to the clean ceiling it left, unless the climb went so far
            // above it that the ceiling was far under the budget (a first run that met a flood):
            // then the climb's count tells more.
            Some((c, _)) if s.probing && !s.established() && climbed > 2.0 * c => climbed,
            Some(_) => s.ceiling_after_429(s.hit(now, drawn)),
        }
        .max(FLOOR);
        s.last_shot = Some(ended);
        s.learn_from_429(drawn);
        let plateau = now.checked_sub(RECOVERY).unwrap_or(now);
        match fitted.filter(|f| *f < ceiling) {
            // Two shots pinned the budget: settle just under it, on the plateau.
            Some(budget) => {
                let budget = budget.clamp(FLOOR, self.settings.max_rate);
                s.ceiling = Some((budget, plateau));
                s.rate = budget;
                // As after a failed probe: the budget is where the shots say, but a 429 that was
                // not the budget's (a proxy, a deploy) would make a fit too low, so probes do not
                // wait the longest yet.
                s.probe_wait = (s.probe_wait.max(PROBE_FIRST * 2) * PROBE_BACKOFF).min(PROBE_MAX);
            }
            // A climb's 429: resume at the ceiling it sets, so the next shot either holds (the
            // budget is a short window's, and this is it: `confirming`) or soon tells more
            // (`fit.rs`). A failed step: back at once to the ceiling it left from, which was
            // clean.
            None if flat => {
                s.ceiling = Some((ceiling, plateau));
                s.rate = ceiling.clamp(FLOOR, self.settings.max_rate);
            }
            None => {
                s.ceiling = Some((ceiling, now));
                s.rate = (ceiling * CUT).clamp(FLOOR, self.settings.max_rate);
            }
        }
        if s.in_flight >= s.concurrency && s.concurrency > 1 {
            s.concurrency = (s.concurrency / 2).max(1);
        }
        s.last_concurrency_change = now;
        s.clean_since_pause = 0;
        s.last_growth = now + wait;
        s.burst_until = now + wait.max(self.settings.rate_limited_wait);
        // Whatever the wait, the rate sent is measured afresh at the new pace: a further cut in
        // this burst needs a full window of it.
        self.pause_all(s, now, wait, true);
        tracing::warn!(
            pause_secs = wait.as_secs_f64(),
            new_rate = s.rate,
            learned_ceiling = s.ceiling.map(|(c, _)| c),
            budget_fitted = fitted.is_some_and(|f| f < ceiling),
            proven_rate = s.proven,
            concurrency = s.concurrency,
            "rate limited (HTTP 429): pausing every stream and slowing down"
        );
    }

    /// Pauses every admission for `wait` from `now` and restarts what a 429 interrupts
    /// (`State::restart_measures`; the rate sent too when `afresh`). The next shot counts as
    /// from quiet only when the pause lasts the API's penalty: a shorter one (a short
    /// `Retry-After`) need not empty a window (`fit.rs`).
    fn pause_all(&self, s: &mut State, now: Instant, wait: Duration, afresh: bool) {
        let resume = s.pause(now, wait, self.settings.burst);
        s.restart_measures(resume, afresh);
        s.shot.quiet = wait >= self.settings.rate_limited_wait;
    }
}
