//! What two 429s in a row tell about the budget.
//!
//! Understory states neither its rate budget nor its window, and a bare 429 is one number (the
//! moment the traffic since the last quiet spell went over) against at least two unknowns: a rate
//! and how much of it a window or bucket holds. So the first 429 only bounds the budget: the last
//! second's rate drew it, but a sliding window of ten seconds, or a token bucket of twenty,
//! refuses at several times its rate, and the same first 429 fits a one-second window at that
//! rate as well as a long window at a fraction of it. The next 429, if one comes, pins it.
//!
//! A *shot* is the clean answers per [`BIN`] since a quiet spell (a run's start, or the end of a
//! 429's pause: a minute, after which a window of up to a minute is empty and a bucket full),
//! ended by a 429. Two shots, two equations, for each shape the docs leave open:
//!
//! - **A window count** (fixed or sliding): the second shot's clean answers are the window's
//!   count N. The span of the first shot's last N answers is then the window, if some of the first
//!   shot lies outside it (*revealed*); if not, the window is at least the whole first shot and N
//!   over its length is only an upper bound, kept further under ([`UNREVEALED`]).
//! - **A token bucket**: a rate B and a capacity C such that each shot's peak deficit (the
//!   answers beyond the refill, carried over as a queue carries its backlog) reached C when its
//!   429 came: the B at which the two shots' peak deficits agree. Plausible only if that capacity
//!   is between one second and a minute of the rate and each shot reached it at its end, not
//!   before.
//!
//! Each shape fits any two shots (two unknowns each), so which one it is takes two *steady*
//! shots: a window refuses a steady stream from quiet after the same count at any rate, a bucket
//! after more answers at a lower rate. Until then the window's estimate serves: the docs speak of
//! window counts, and when it is wrong it costs one more 429 (and gives the steady shot), while
//! the bucket's, when wrong, would crawl until the next probe.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The resolution of a shot.
pub(super) const BIN: Duration = Duration::from_millis(100);
/// The most of a shot kept: the last minute (windows of up to a minute are what the docs'
/// minute of back-off can empty).
const KEEP: usize = 600;
/// A window's estimate, when the window was revealed, is kept this far under.
const REVEALED: f64 = 0.97;
/// An upper bound (the window spans the whole first shot, maybe more) is kept this far under.
const UNREVEALED: f64 = 0.93;
/// A bucket's estimate is kept this far under.
const BUCKET: f64 = 0.97;
/// The capacity a bucket must have, in seconds of its rate, to be believed: at most a minute
/// (what the docs' minute of back-off refills), and at least one second, under which a bucket
/// acts as a window of a second and the window's estimate serves.
const CAPACITY_SECS: std::ops::RangeInclusive<f64> = 1.0..=60.0;
/// Two steady shots' counts this close (as a share) are one window's count: a bucket's differ
/// by its refill over the shots' different lengths, a tenth at 1.6 and 1.0 times its rate.
const SAME_COUNT: f64 = 0.04;
/// A window two steady shots confirmed is guessed this many times as long as the longer shot
/// (rounded up to whole seconds as a measured one is).
const LONGER_WINDOW: f64 = 1.5;
/// The fewest clean answers a shot needs to say anything.
const FEWEST: u32 = 5;

/// Clean answers per [`BIN`] since a quiet spell (the most recent [`KEEP`] bins).
#[derive(Debug, Clone)]
pub(super) struct Shot {
    start: Instant,
    bins: VecDeque<u32>,
    /// Longer than [`KEEP`]: its start is gone, and with it what it says about the budget.
    truncated: bool,
    /// Begun by a quiet spell at least as long as the API's penalty (a run's start, or a pause of
    /// `rate_limited_wait` or more): only then is a window empty, a bucket full, at its start.
    pub(super) quiet: bool,
}

impl Shot {
    pub(super) fn new(start: Instant) -> Self {
        Self {
            start,
            bins: VecDeque::new(),
            truncated: false,
            quiet: true,
        }
    }

    /// Counts a clean answer at `now`.
    pub(super) fn count(&mut self, now: Instant) {
        self.reach(now);
        if let Some(last) = self.bins.back_mut() {
            *last += 1;
        }
    }

    /// Extends the shot with empty bins up to the one holding `now`, dropping the oldest beyond
    /// [`KEEP`].
    pub(super) fn reach(&mut self, now: Instant) {
        let index = (now.saturating_duration_since(self.start).as_nanos() / BIN.as_nanos()) as usize;
        if index >= self.bins.len() + KEEP {
            // A long silence: the last KEEP bins are all empty.
            self.start += BIN * (index + 1 - KEEP) as u32;
            self.bins = VecDeque::from(vec![0; KEEP]);
            self.truncated = true;
            return;
        }
        while self.bins.len() <= index {
            self.bins.push_back(0);
        }
        while self.bins.len() > KEEP {
            self.bins.pop_front();
            self.start += BIN;
            self.truncated = true;
        }
    }

    /// Clean answers in the last second of the shot (its last ten bins).
    pub(super) fn last_second(&self) -> f64 {
        f64::from(self.bins.iter().rev().take(10).sum::<u32>())
    }

    /// Whether the shot was sent at about one rate: its two halves' rates within a fifth of
    /// each other (a slow start's shot doubles every two seconds).
    fn steady(&self) -> bool {
        let half = self.bins.len() / 2;
        let (a, b): (u32, u32) = (
            self.bins.iter().take(half).sum(),
            self.bins.iter().skip(half).take(half).sum(),
        );
        half > 0 && f64::from(a.abs_diff(b)) <= 0.2 * f64::from(a.max(b))
    }

    fn total(&self) -> u32 {
        self.bins.iter().sum()
    }

    fn secs(&self) -> f64 {
        self.bins.len() as f64 * BIN.as_secs_f64()
    }
}

/// The budget two consecutive shots imply, already kept under as this module says; `None` when
/// they are too small to say anything or no shape fits.
pub(super) fn budget(first: &Shot, second: &Shot) -> Option<f64> {
    // A shot longer than a minute ran under the budget for most of it: nothing to fit (and its
    // start is gone).
    if first.truncated
        || second.truncated
        || !first.quiet
        || !second.quiet
        || first.total() < FEWEST
        || second.total() < FEWEST
    {
        return None;
    }
    // A window confirmed by two steady shots with one count, both shorter than it: how much
    // longer is unknown, so guess [`LONGER_WINDOW`] times the longer shot (a guess too short
    // costs a 429 and the next guess is longer; one too long slows the pace as much, until a
    // probe).
    let steady = first.steady() && second.steady();
    if steady && same_count(first, second) {
        let longer = first.secs().max(second.secs());
        return Some(f64::from(second.total()) / whole_seconds(LONGER_WINDOW * longer) * REVEALED);
    }
    let window = window(first, second.total());
    let Some(bucket) = bucket(first, second).map(|b| b * BUCKET) else {
        return window;
    };
    // Both shapes fit both shots (each has two unknowns). Two steady shots tell them apart: a
    // window refuses a steady stream from quiet after the same count whatever its rate, a
    // bucket after more answers the slower the stream. Otherwise the window wins: the docs
    // speak of window counts, and taking the lower estimate when it is wrong would crawl until
    // the next probe, while the higher one, when wrong, costs one more 429 and a steady shot.
    if steady && !same_count(first, second) {
        Some(bucket)
    } else {
        window
    }
}

/// Two steady shots that each ended after one count: a window's, longer than either shot.
fn same_count(first: &Shot, second: &Shot) -> bool {
    f64::from(first.total().abs_diff(second.total())) <= SAME_COUNT * f64::from(second.total())
}

/// The window-count estimate (see the module's documentation), kept under; `None` when the two
/// shots contradict each other.
fn window(first: &Shot, count: u32) -> Option<f64> {
    let total = first.total();
    let mut sum = 0;
    for (k, n) in first.bins.iter().rev().enumerate() {
        sum += n;
        if sum >= count {
            // Revealed only if half a second or more of the first shot, and some answers, lie
            // before the window (a bin's edge is no window).
            let span = (k + 1) as f64 * BIN.as_secs_f64();
            if total > sum && span + 0.5 <= first.secs() {
                return Some(f64::from(count) / whole_seconds(span) * REVEALED);
            }
            break;
        }
    }
    // The window held all of the first shot, so its count is the first shot's too: a second
    // count far from it means one of the two 429s was not the budget's, and neither says more.
    if f64::from(total.abs_diff(count)) > 0.1 * f64::from(count) {
        return None;
    }
    Some(f64::from(count) / first.secs() * UNREVEALED)
}

/// A window measured as the span of its last answers, rounded up to a whole number of seconds
/// when that is at most a tenth longer. Rate limiters count over whole seconds, and a fixed
/// window's answers rarely span all of it (the window began before the first of them), so a span
/// a little short of a whole second is that second; one further off is taken as measured.
fn whole_seconds(span: f64) -> f64 {
    let whole = (0.9 * span).ceil();
    if whole > span { whole } else { span }
}

/// The peak deficit of a shot against a bucket refilled at `rate`, and the bin where it was
/// first reached.
fn peak_deficit(shot: &Shot, rate: f64) -> (f64, usize) {
    let refill = rate * BIN.as_secs_f64();
    let (mut deficit, mut peak, mut at) = (0.0_f64, 0.0_f64, 0);
    for (i, n) in shot.bins.iter().enumerate() {
        deficit = (deficit + f64::from(*n) - refill).max(0.0);
        if deficit > peak {
            (peak, at) = (deficit, i);
        }
    }
    (peak, at)
}

/// The token-bucket rate both shots agree on, if a plausible one exists (not kept under).
fn bucket(first: &Shot, second: &Shot) -> Option<f64> {
    let gap = |rate: f64| peak_deficit(first, rate).0 - peak_deficit(second, rate).0;
    // Each shot drained the bucket, so its rate is above the bucket's: scan up to the faster
    // shot's average for where the two peak deficits meet.
    let top = (f64::from(first.total()) / first.secs()).max(f64::from(second.total()) / second.secs());
    let at_zero = gap(0.0);
    if at_zero == 0.0 {
        return None;
    }
    let sign = at_zero.signum();
    const STEPS: u32 = 80;
    let (mut lo, mut hi) = (0.0, None);
    for i in 1..=STEPS {
        let rate = top * f64::from(i) / f64::from(STEPS);
        if gap(rate) * sign <= 0.0 {
            hi = Some(rate);
            break;
        }
        lo = rate;
    }
    let mut hi = hi?;
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if gap(mid) * sign > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let rate = (lo + hi) / 2.0;
    let (capacity, reached) = peak_deficit(second, rate);
    let (_, reached_first) = peak_deficit(first, rate);
    // Each shot must have emptied the bucket at its end, not before (it would have drawn its 429
    // then), within a second.
    let at_end = |shot: &Shot, at: usize| shot.bins.len() - at <= 10;
    (rate > 0.0
        && CAPACITY_SECS.contains(&(capacity / rate))
        && at_end(second, reached)
        && at_end(first, reached_first))
    .then_some(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shot from per-bin rates (answers per second), one entry per bin.
    fn shot(per_second: impl IntoIterator<Item = f64>) -> Shot {
        let start = Instant::now();
        let mut s = Shot::new(start);
        let mut carry = 0.0;
        for (i, r) in per_second.into_iter().enumerate() {
            carry += r * BIN.as_secs_f64();
            let at = start + BIN * i as u32;
            s.reach(at);
            while carry >= 1.0 {
                s.count(at);
                carry -= 1.0;
            }
        }
        s
    }

    /// A slow start doubling every two seconds from 5/s, cut at the first bin a shape refuses.
    fn ramp_until(refuses: impl Fn(&[f64]) -> bool) -> Shot {
        let mut rates = Vec::new();
        for i in 0.. {
            rates.push(5.0 * (i as f64 * BIN.as_secs_f64() / 2.0).exp2());
            if refuses(&rates) {
                // The bin that went over: its answers were partly refused.
                rates.pop();
                break;
            }
        }
        shot(rates)
    }

    fn secs(bins: usize) -> f64 {
        bins as f64 * BIN.as_secs_f64()
    }

    /// Sliding window: the last `window` bins hold more than `count`.
    fn sliding(count: f64, window: usize) -> impl Fn(&[f64]) -> bool {
        move |r: &[f64]| r.iter().rev().take(window).sum::<f64>() * BIN.as_secs_f64() > count
    }

    /// Token bucket of `capacity` refilled at `rate`, full at the start.
    fn bucket_of(capacity: f64, rate: f64) -> impl Fn(&[f64]) -> bool {
        move |r: &[f64]| {
            let mut tokens = capacity;
            r.iter().any(|x| {
                tokens = (tokens + rate * BIN.as_secs_f64()).min(capacity) - x * BIN.as_secs_f64();
                tokens < 0.0
            })
        }
    }

    /// A steady second shot at `rate` until the shape refuses.
    fn steady_until(rate: f64, refuses: impl Fn(&[f64]) -> bool) -> Shot {
        let mut rates = Vec::new();
        while !refuses(&rates) {
            rates.push(rate);
        }
        rates.pop();
        shot(rates)
    }

    #[test]
    fn a_sliding_window_longer_than_the_first_shot_gives_a_bound_under_its_rate() {
        // 40/s over 10 s: the slow start's 429 comes before 10 s, with all of it in the window.
        let first = ramp_until(sliding(400.0, 100));
        assert!(secs(first.bins.len()) < 10.0);
        let second = steady_until(120.0, sliding(400.0, 100));
        let b = budget(&first, &second).unwrap();
        assert!((36.0..40.0).contains(&b), "{b}");
    }

    #[test]
    fn a_sliding_window_the_first_shot_outlasted_is_found() {
        // 10/s over 2 s (20 answers): the first shot runs past 2 s, so the window shows.
        let first = ramp_until(sliding(20.0, 20));
        assert!(secs(first.bins.len()) > 2.0);
        let second = steady_until(30.0, sliding(20.0, 20));
        let b = budget(&first, &second).unwrap();
        assert!((8.5..=10.0).contains(&b), "{b}");
    }

    #[test]
    fn a_token_bucket_is_told_from_a_window_by_two_steady_shots() {
        // 40/s with 20 s of capacity: the slow start runs far over 40/s before it empties.
        let refuses = || bucket_of(800.0, 40.0);
        let first = ramp_until(refuses());
        let second = steady_until(300.0, refuses());
        // After the slow start, both shapes fit: the window's (higher) estimate serves.
        let window = budget(&first, &second).unwrap();
        assert!(window > 100.0, "{window}");
        // Two steady shots with different counts: a bucket, found (within a bin's answers,
        // which these whole-bin shots lose at their ends).
        let third = steady_until(window, refuses());
        let b = budget(&second, &third).unwrap();
        assert!((32.0..=48.0).contains(&b), "{b}");
    }

    #[test]
    fn a_window_longer_than_two_steady_shots_is_guessed_longer_still() {
        // 400 per 30 s: two steady shots over 40/s from quiet each end after 400.
        let refuses = || sliding(400.0, 300);
        let (a, b) = (steady_until(100.0, refuses()), steady_until(80.0, refuses()));
        let guess = budget(&a, &b).unwrap();
        // 400 over 1.5 × 5 s, kept 3 % under.
        assert!((50.0..53.0).contains(&guess), "{guess}");
    }

    #[test]
    fn a_one_second_window_is_not_taken_for_a_bucket() {
        let first = ramp_until(sliding(40.0, 10));
        let second = steady_until(44.0, sliding(40.0, 10));
        let b = budget(&first, &second).unwrap();
        assert!((36.0..=40.0).contains(&b), "{b}");
    }

    #[test]
    fn a_span_a_little_short_of_whole_seconds_is_taken_as_them() {
        assert_eq!(whole_seconds(0.93), 1.0);
        assert_eq!(whole_seconds(1.85), 2.0);
        assert_eq!(whole_seconds(10.3), 10.3, "never shorter than measured");
        assert_eq!(whole_seconds(4.2), 4.2, "a fifth short of 5 s is no 5 s");
    }

    #[test]
    fn a_fixed_one_second_window_is_found_under_its_count() {
        // 200 in each second from the first answer: the ramp's last second straddles two
        // windows, and a steady shot over 200/s ends after 200.
        let fixed = |count: f64| {
            move |r: &[f64]| {
                let last = r.len().saturating_sub(1) / 10 * 10;
                r[last..].iter().sum::<f64>() * BIN.as_secs_f64() > count
            }
        };
        let first = ramp_until(fixed(200.0));
        let second = steady_until(215.0, fixed(200.0));
        let b = budget(&first, &second).unwrap();
        assert!((180.0..=200.0).contains(&b), "{b}");
    }

    #[test]
    fn a_second_429_that_was_not_the_budgets_says_nothing() {
        // All of the first shot in a ten-second window of 400: a second shot that ran to 600
        // before a 429 (a proxy, a deploy) contradicts it, instead of making the window's count
        // 600 over the first shot's length.
        let first = ramp_until(sliding(400.0, 100));
        let second = shot([120.0; 50]);
        assert_eq!(budget(&first, &second), None);
    }

    #[test]
    fn a_shot_after_a_short_pause_says_nothing() {
        let first = ramp_until(sliding(400.0, 100));
        let mut second = steady_until(120.0, sliding(400.0, 100));
        second.quiet = false;
        assert_eq!(budget(&first, &second), None);
    }

    #[test]
    fn shots_too_small_say_nothing() {
        assert_eq!(budget(&shot([10.0; 3]), &shot([10.0; 30])), None);
    }

    #[test]
    fn a_shot_keeps_its_last_minute_and_then_says_nothing() {
        let s = shot(std::iter::repeat_n(10.0, 2 * KEEP));
        assert_eq!(s.bins.len(), KEEP);
        assert_eq!(s.total(), 600);
        assert_eq!(budget(&s, &shot([30.0; 30])), None);
    }
}
