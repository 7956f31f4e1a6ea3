//! Adaptive pace: one controller for every request the job sends (token endpoint included), so
//! the sum of all streams stays under Understory's rate budget — a budget the API never states
//! and signals only with a bare 429 (`understory-api.md` §4).
//!
//! Terms:
//! - *rate*: requests per second the controller admits now, spaced evenly (GCRA: each admission
//!   reserves the next slot, `burst` slots may be used at once).
//! - *concurrency*: requests in flight at once, the API's other limit.
//! - *learned ceiling* (`w_max`): the rate at which the API last answered 429.
//! - *pause*: after a 429 nothing is sent, by any stream, until the wait is over.
//!
//! The shape follows the AWS SDKs' `adaptive` retry mode (a token-bucket rate that grows along a
//! CUBIC curve while answers are clean and is cut on throttling), tuned for an API whose every
//! 429 costs a minute of silence: before the first 429 the rate doubles every
//! [`SLOW_START_DOUBLING`] (never beyond twice what was really sent); a 429 cuts it to
//! [`CUT`] × the rate that triggered it and pauses everything; it then climbs back to the learned
//! ceiling over [`RECOVERY`], flattening out just below it, and probes above it only slowly.
//! Unlike the SDKs, the learned rate and ceiling are kept in the database, so the next run starts
//! where this one ended instead of finding the budget again.
//!
//! Time is tokio's, so tests drive it with a paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A 429 cuts the rate to this share of the rate that drew it.
pub const CUT: f64 = 0.8;
/// Time to climb back from the cut to the learned ceiling. Long on purpose: a 429 costs a pause
/// of a minute, so the curve spends this long just under the ceiling before probing above it.
pub const RECOVERY: Duration = Duration::from_secs(300);
/// The learned ceiling sits this far under the rate that drew a 429: that rate was over the
/// budget by definition, so the curve's plateau belongs just below it.
pub const MARGIN: f64 = 0.97;
/// Before the first 429 the rate doubles this often while answers are clean.
pub const SLOW_START_DOUBLING: Duration = Duration::from_secs(2);
/// The slowest pace the controller goes down to, whatever happens.
pub const FLOOR: f64 = 0.2;
/// The concurrency cap grows by one after this long without a 429.
const CONCURRENCY_GROWTH: Duration = Duration::from_secs(30);
/// The window over which the rate really sent is measured.
const MEASURE: Duration = Duration::from_secs(1);

/// Who is asking: a list walk's request goes before any fan-out request waiting for a place,
/// because its cursor is short-lived and the fan-out's work keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Walk,
    FanOut,
}

/// What the controller is told at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Requests per second on a first run (no learned pace yet).
    pub start_rate: f64,
    /// Never faster than this, whatever the API tolerates.
    pub max_rate: f64,
    /// Slots that may be used at once after a quiet spell.
    pub burst: u32,
    /// The most requests in flight at once (and the start).
    pub max_concurrent: usize,
    /// A 429 without `Retry-After` pauses this long (the docs: at least a minute).
    pub rate_limited_wait: Duration,
    /// A `Retry-After` longer than this is capped to it.
    pub max_retry_after: Duration,
}

/// What a previous run learned, kept in the database (`pace_state`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    pub rate: f64,
    /// The rate of the last 429, if one was ever seen.
    pub ceiling: Option<f64>,
    pub concurrency: usize,
}

/// The controller's figures, for the run summary, `status`, `sync_runs` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// The pace the run started at (learned by the previous run, or configured).
    pub start_rate: f64,
    /// The pace at the end of the run, requests per second.
    pub rate: f64,
    /// The highest pace reached during the run.
    pub peak_rate: f64,
    /// The learned ceiling (rate of the last 429), if any.
    pub ceiling: Option<f64>,
    pub concurrency: usize,
    /// 429 answers, from any endpoint.
    pub rate_limited: u64,
    /// Time every stream spent paused after 429s, milliseconds.
    pub paused_ms: u64,
}

struct State {
    rate: f64,
    /// The GCRA's theoretical arrival time: the next free slot.
    tat: Instant,
    paused_until: Option<Instant>,
    /// Bumped by every cut, so the other answers of one throttled burst do not cut again.
    epoch: u64,
    /// Learned ceiling and when it was learned; `None` while in slow start.
    ceiling: Option<(f64, Instant)>,
    last_growth: Instant,
    concurrency: usize,
    in_flight: usize,
    /// Walk requests waiting for a place in flight; fan-out requests wait while any do.
    walks_waiting: usize,
    last_concurrency_change: Instant,
    window_start: Instant,
    window_count: u32,
    /// Requests per second really admitted, smoothed.
    measured: f64,
    peak: f64,
    start: f64,
    /// Clean answers since the last pause began.
    clean_since_pause: u64,
    rate_limited: u64,
    paused: Duration,
}

/// The shared controller. Cheap to clone.
#[derive(Clone)]
pub struct Pace {
    settings: Arc<Settings>,
    state: Arc<Mutex<State>>,
    freed: Arc<Notify>,
}

/// One admitted request; holds its place in flight until dropped.
pub struct Permit {
    pace: Pace,
    epoch: u64,
}

impl Pace {
    pub fn new(settings: Settings, learned: Option<Learned>) -> Self {
        let now = Instant::now();
        let max_rate = settings.max_rate.max(FLOOR);
        let (rate, ceiling, concurrency) = match learned {
            Some(l) => {
                let rate = l.rate.clamp(FLOOR, max_rate);
                // Resume the curve where the learned rate sits on it, not at its start.
                let ceiling = l.ceiling.map(|c| {
                    let c = c.max(FLOOR);
                    let left = ((1.0 - rate / c) / (1.0 - CUT)).clamp(0.0, 1.0).cbrt();
                    (c, now - RECOVERY.mul_f64(1.0 - left))
                });
                (
                    rate,
                    ceiling,
                    l.concurrency.clamp(1, settings.max_concurrent.max(1)),
                )
            }
            None => (
                settings.start_rate.clamp(FLOOR, max_rate),
                None,
                settings.max_concurrent.max(1),
            ),
        };
        Self {
            state: Arc::new(Mutex::new(State {
                rate,
                tat: now,
                paused_until: None,
                epoch: 0,
                ceiling,
                last_growth: now,
                concurrency,
                in_flight: 0,
                walks_waiting: 0,
                last_concurrency_change: now,
                window_start: now,
                window_count: 0,
                measured: rate,
                peak: rate,
                start: rate,
                clean_since_pause: 0,
                rate_limited: 0,
                paused: Duration::ZERO,
            })),
            settings: Arc::new(Settings { max_rate, ..settings }),
            freed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a place in flight, then for the next free slot (and for any pause to end).
    pub async fn admit(&self, lane: Lane) -> Permit {
        let mut waiting = WalkWaiting(None);
        if lane == Lane::Walk {
            self.lock().walks_waiting += 1;
            waiting.0 = Some(self.clone());
        }
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = self.lock();
                if s.in_flight < s.concurrency && (lane == Lane::Walk || s.walks_waiting == 0) {
                    s.in_flight += 1;
                    break;
                }
            }
            freed.await;
        }
        drop(waiting);
        // From here on the place in flight is the permit's: dropping it (a stop) gives it back.
        let mut permit = Permit {
            pace: self.clone(),
            epoch: 0,
        };
        loop {
            let (slot, epoch) = {
                let mut s = self.lock();
                let now = Instant::now();
                let base = s.paused_until.map_or(now, |p| p.max(now));
                // `rate` is at least FLOOR, so the interval is finite.
                let interval = Duration::from_nanos((1e9 / s.rate) as u64);
                let tolerance = interval * self.settings.burst.saturating_sub(1);
                let slot = base.max(s.tat.checked_sub(tolerance).unwrap_or(s.tat));
                s.tat = s.tat.max(slot) + interval;
                (slot, s.epoch)
            };
            tokio::time::sleep_until(slot).await;
            let mut s = self.lock();
            let now = Instant::now();
            // A pause that began while this request waited for its slot applies to it too.
            if s.paused_until.is_some_and(|p| p > now) {
                continue;
            }
            if now.duration_since(s.window_start) >= MEASURE {
                let secs = now.duration_since(s.window_start).as_secs_f64();
                let sample = f64::from(s.window_count) / secs;
                s.measured = if secs > 4.0 * MEASURE.as_secs_f64() {
                    sample
                } else {
                    0.5 * s.measured + 0.5 * sample
                };
                s.window_start = now;
                s.window_count = 0;
            }
            s.window_count += 1;
            permit.epoch = epoch;
            return permit;
        }
    }

    /// The controller's figures now.
    pub fn report(&self) -> Report {
        let s = self.lock();
        Report {
            start_rate: s.start,
            rate: s.rate,
            peak_rate: s.peak,
            ceiling: s.ceiling.map(|(c, _)| c),
            concurrency: s.concurrency,
            rate_limited: s.rate_limited,
            paused_ms: s.paused.as_millis() as u64,
        }
    }

    /// What to keep for the next run: the pace, but never above the learned ceiling (a run may
    /// end while probing above it, and the next should not start with a 429).
    pub fn learned(&self) -> Learned {
        let s = self.lock();
        Learned {
            rate: s.ceiling.map_or(s.rate, |(c, _)| s.rate.min(c)),
            ceiling: s.ceiling.map(|(c, _)| c),
            concurrency: s.concurrency,
        }
    }

    /// The pace now, requests per second.
    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    fn grow(&self) {
        let mut s = self.lock();
        let now = Instant::now();
        if s.paused_until.is_some_and(|p| p > now) {
            return;
        }
        s.clean_since_pause += 1;
        // Never grow beyond twice what is really sent: a rate nobody uses proves nothing.
        let usable = (2.0 * s.measured).max(s.rate);
        let target = match s.ceiling {
            None => {
                let dt = now.duration_since(s.last_growth).as_secs_f64();
                s.rate * (dt / SLOW_START_DOUBLING.as_secs_f64()).exp2()
            }
            Some((w_max, at)) => {
                let k = RECOVERY.as_secs_f64();
                let t = now.duration_since(at).as_secs_f64();
                w_max * (1.0 - (1.0 - CUT) * ((k - t) / k).powi(3))
            }
        };
        s.last_growth = now;
        s.rate = s
            .rate
            .max(target.min(usable))
            .clamp(FLOOR, self.settings.max_rate);
        s.peak = s.peak.max(s.rate);
        if s.concurrency < self.settings.max_concurrent
            && now.duration_since(s.last_concurrency_change) >= CONCURRENCY_GROWTH
        {
            s.concurrency += 1;
            s.last_concurrency_change = now;
            drop(s);
            self.freed.notify_waiters();
        }
    }

    /// A 429 on a request admitted in `epoch`: the first one of a burst cuts the pace and pauses
    /// everything; the others only count. Returns how long the pause lasts from now.
    fn throttled(&self, epoch: u64, retry_after: Option<Duration>) -> Duration {
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
        // A 429 after a pause and before any clean answer is the server's penalty outlasting ours,
        // not a sign of a lower budget: pause again, cut nothing (nothing was sent to measure).
        if s.paused_until.is_some() && s.clean_since_pause == 0 {
            let until = now + wait;
            let from = s.paused_until.map_or(now, |p| p.max(now));
            s.paused += until.saturating_duration_since(from);
            s.paused_until = Some(until);
            s.tat = s.tat.max(until);
            tracing::warn!(
                pause_secs = wait.as_secs_f64(),
                "rate limited again right after a pause: pausing every stream once more"
            );
            return wait;
        }
        // What was really being sent, when a full window of traffic tells: a rate nobody used
        // says nothing about the budget. Otherwise the pace itself.
        let elapsed = now.duration_since(s.window_start);
        let sent = if elapsed >= MEASURE && s.window_count >= 5 {
            f64::from(s.window_count) / elapsed.as_secs_f64()
        } else {
            s.rate
        };
        let hit = s.rate.min(sent * 1.25).max(FLOOR);
        let ceiling = (hit * MARGIN).max(FLOOR);
        s.ceiling = Some((ceiling, now));
        s.rate = (ceiling * CUT).clamp(FLOOR, self.settings.max_rate);
        if s.in_flight >= s.concurrency && s.concurrency > 1 {
            s.concurrency = (s.concurrency / 2).max(1);
        }
        s.last_concurrency_change = now;
        let until = now + wait;
        let already = s.paused_until.filter(|p| *p > now);
        s.paused += match already {
            Some(p) if p >= until => Duration::ZERO,
            Some(p) => until - p,
            None => wait,
        };
        s.paused_until = Some(already.map_or(until, |p| p.max(until)));
        s.clean_since_pause = 0;
        s.tat = s.tat.max(until);
        s.last_growth = until;
        tracing::warn!(
            pause_secs = wait.as_secs_f64(),
            new_rate = s.rate,
            learned_ceiling = ceiling,
            concurrency = s.concurrency,
            "rate limited (HTTP 429): pausing every stream and slowing down"
        );
        wait
    }
}

/// Counts a walk request as waiting until it has its place (or gives up, on a stop).
struct WalkWaiting(Option<Pace>);

impl Drop for WalkWaiting {
    fn drop(&mut self) {
        if let Some(pace) = self.0.take() {
            let mut s = pace.lock();
            s.walks_waiting = s.walks_waiting.saturating_sub(1);
            drop(s);
            pace.freed.notify_waiters();
        }
    }
}

impl Permit {
    /// The answer was clean: the pace may grow.
    pub fn success(&self) {
        self.pace.grow();
    }

    /// The answer was a 429; see [`Pace::throttled`].
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            start_rate: 5.0,
            max_rate: 1_000.0,
            burst: 1,
            max_concurrent: 4,
            rate_limited_wait: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(120),
        }
    }

    /// Sends `secs` seconds of back-to-back requests, each answered clean unless the simulated
    /// API (a fixed budget per second) is over; returns the 429s seen.
    async fn drive(pace: &Pace, secs: u64, budget: u32) -> u32 {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut second = Instant::now();
        let mut used = 0;
        let mut throttles = 0;
        while Instant::now() < end {
            let p = pace.admit(Lane::Walk).await;
            if Instant::now().duration_since(second) >= Duration::from_secs(1) {
                second = Instant::now();
                used = 0;
            }
            used += 1;
            if used > budget {
                p.throttled(None);
                throttles += 1;
            } else {
                p.success();
            }
        }
        throttles
    }

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_at_the_rate() {
        let pace = Pace::new(
            Settings {
                max_rate: 5.0,
                ..settings()
            },
            None,
        );
        let start = Instant::now();
        for _ in 0..11 {
            pace.admit(Lane::Walk).await.success();
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_then_settles_under_the_budget() {
        let pace = Pace::new(settings(), None);
        let throttles = drive(&pace, 60, 40).await;
        assert!(
            (1..=3).contains(&throttles),
            "{throttles} 429s in the first minute"
        );
        let first_minute = pace.report();
        assert!(first_minute.ceiling.is_some());
        // After learning, ten minutes see at most two more 429s.
        let later = drive(&pace, 600, 40).await;
        assert!(later <= 2, "{later} 429s in ten minutes");
        let r = pace.report();
        assert!(r.rate > 0.75 * 40.0 && r.rate <= 44.0, "{r:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_admission_and_counts_once_per_burst() {
        let pace = Pace::new(settings(), None);
        let a = pace.admit(Lane::Walk).await;
        let b = pace.admit(Lane::Walk).await;
        let rate = pace.rate();
        assert_eq!(a.throttled(None), Duration::from_secs(60));
        // b was admitted before the cut: it counts, but neither cuts nor extends the pause.
        assert!(b.throttled(None) <= Duration::from_secs(60));
        assert!((pace.rate() - rate * CUT).abs() < 1e-9 || pace.rate() <= rate);
        drop((a, b));
        let before = Instant::now();
        let _c = pace.admit(Lane::Walk).await;
        assert!(before.elapsed() >= Duration::from_secs(60));
        let r = pace.report();
        assert_eq!((r.rate_limited, r.paused_ms), (2, 60_000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_right_after_a_pause_pauses_again_without_collapsing_the_pace() {
        let pace = Pace::new(settings(), None);
        pace.admit(Lane::Walk).await.throttled(None);
        let before = pace.report();
        // The server's penalty outlasts ours: the first request after the pause is refused too.
        let p = pace.admit(Lane::Walk).await;
        assert_eq!(p.throttled(None), Duration::from_secs(60));
        let after = pace.report();
        assert_eq!(
            (after.ceiling, after.rate),
            (before.ceiling, before.rate),
            "nothing cut"
        );
        assert_eq!(after.paused_ms, 120_000);
        drop(p);
        // After a clean answer, a 429 is news about the budget again.
        pace.admit(Lane::Walk).await.success();
        pace.admit(Lane::Walk).await.throttled(None);
        assert!(pace.report().rate < after.rate);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_but_capped() {
        let pace = Pace::new(settings(), None);
        let p = pace.admit(Lane::Walk).await;
        assert_eq!(
            p.throttled(Some(Duration::from_secs(3_600))),
            Duration::from_secs(120)
        );
        let q = Pace::new(settings(), None).admit(Lane::Walk).await;
        assert_eq!(q.throttled(Some(Duration::from_secs(7))), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn the_concurrency_cap_holds_and_is_cut_when_full() {
        let pace = Pace::new(settings(), None);
        let held: Vec<Permit> = futures::future::join_all((0..4).map(|_| pace.admit(Lane::Walk))).await;
        let fifth = tokio::time::timeout(Duration::from_secs(5), pace.admit(Lane::Walk)).await;
        assert!(fifth.is_err(), "a fifth request waits for a place");
        held[0].throttled(None);
        assert_eq!(pace.report().concurrency, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_walk_request_goes_before_waiting_fan_out_requests() {
        let pace = Pace::new(
            Settings {
                max_concurrent: 1,
                ..settings()
            },
            None,
        );
        let held = pace.admit(Lane::Walk).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (n, lane) in [(0, Lane::FanOut), (1, Lane::FanOut), (2, Lane::Walk)] {
            let (pace, order) = (pace.clone(), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(n)).await;
                let p = pace.admit(lane).await;
                order.lock().unwrap().push(n);
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(p);
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(order.lock().unwrap()[0], 2, "the walk went first: {order:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_learned_pace_is_resumed() {
        let learned = Learned {
            rate: 30.0,
            ceiling: Some(32.0),
            concurrency: 3,
        };
        let pace = Pace::new(settings(), Some(learned));
        let r = pace.report();
        assert_eq!((r.rate, r.ceiling, r.concurrency), (30.0, Some(32.0), 3));
        let throttles = drive(&pace, 300, 33).await;
        assert!(throttles <= 1, "{throttles}");
        assert!(pace.rate() >= 30.0 * CUT);
    }
}
