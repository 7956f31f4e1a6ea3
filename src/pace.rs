//! Adaptive pace: one controller for every request the job sends (token endpoint included), so
//! the sum of all streams stays under Understory's rate budget — a budget the API never states
//! and signals only with a bare 429 (`understory-api.md` §4).
//!
//! Terms:
//! - *rate*: requests per second the controller admits now, spaced evenly (GCRA: each admission
//!   reserves the next slot, `burst` slots may be used at once).
//! - *concurrency*: requests in flight at once, the API's other limit.
//! - *learned ceiling* (`w_max`): just under the rate at which the API last answered 429.
//! - *proven rate*: the highest rate the API really answered clean, measured over
//!   [`PROOF_WINDOW`] of answers with no 429 among them. Evidence, not a guess: the ceiling
//!   falls back under it only on a 429 drawn at or below it.
//! - *pause*: after a 429 nothing is sent, by any stream, until the wait is over.
//! - *burst*: the 429s that follow a cut within the API's penalty (`Settings::rate_limited_wait`,
//!   a minute); they answer for the same overshoot, so they cut no further (see
//!   [`Pace::throttled`]).
//! - *clean spell*: the API's penalty length again without a 429, with at least
//!   [`CLEAN_ANSWERS`] clean answers in it (silence proves nothing).
//!
//! The shape follows the AWS SDKs' `adaptive` retry mode (a token-bucket rate that grows along a
//! CUBIC curve while answers are clean and is cut on throttling), tuned for an API whose every
//! 429 costs a minute of silence: before the first 429 the rate doubles every
//! [`SLOW_START_DOUBLING`] (never beyond twice what was really sent); a 429 cuts it to
//! [`CUT`] × the rate that triggered it and pauses everything; it then climbs back to the learned
//! ceiling over [`RECOVERY`], flattening out there.
//!
//! A ceiling is only as good as the 429 that set it, and 429s lie: an API answering every other
//! request 429 for a while (a deploy, a proxy, a shared budget) drives the ceiling to the floor
//! though the budget never moved. So the ceiling heals: after a clean spell, a ceiling below
//! [`HEAL_BELOW`] × the proven rate is raised back to the proven rate at once (the rate follows
//! as fast as slow start would); and after [`PROBE_FIRST`] without a 429 the controller *probes*
//! above the ceiling with slow start again, because without a proven rate (a first run that met
//! such a flood) nothing else could ever raise it. A probe that ends in a 429 doubles the time
//! the next one waits for (up to [`PROBE_MAX`]), so at a real budget probes grow rare; one that
//! holds for a clean spell resets the wait.
//!
//! Unlike the SDKs, the learned rate, ceiling and proven rate are kept in the database, so the
//! next run starts where this one ended instead of finding the budget again.
//!
//! Time is tokio's, so tests drive it with a paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A 429 cuts the rate to this share of the rate that drew it.
pub const CUT: f64 = 0.8;
/// Time to climb back from the cut to the learned ceiling. Long on purpose: a 429 costs a pause
/// of a minute, so the curve approaches the ceiling slowly and holds there; going above it is a
/// probe's job (see the module's documentation).
pub const RECOVERY: Duration = Duration::from_secs(300);
/// The learned ceiling sits this far under the rate that drew a 429: that rate was over the
/// budget by definition, so the curve's plateau belongs just below it.
pub const MARGIN: f64 = 0.97;
/// Before the first 429, and while probing, the rate doubles this often while answers are clean.
pub const SLOW_START_DOUBLING: Duration = Duration::from_secs(2);
/// The slowest pace the controller goes down to, whatever happens.
pub const FLOOR: f64 = 0.2;
/// A clean spell needs at least this many clean answers besides its length: a quiet minute
/// says nothing about the API, and an API answering every other request 429 gives one clean
/// answer between two 429s.
pub const CLEAN_ANSWERS: u32 = 5;
/// A proof of the proven rate: clean answers over at least this long (and at least
/// [`PROOF_ANSWERS`] of them), with no 429 among them. Two seconds: long enough to average a
/// burst of slots out, short enough that a short run still proves what it used.
pub const PROOF_WINDOW: Duration = Duration::from_secs(2);
/// The fewest clean answers one proof counts.
pub const PROOF_ANSWERS: u32 = 10;
/// After a clean spell, a learned ceiling under this share of the proven rate is raised to the
/// proven rate. Not 1.0: a ceiling a little under it is the CUBIC curve's normal state.
pub const HEAL_BELOW: f64 = 0.9;
/// Time without a 429 before the first probe above the learned ceiling. Slow start's 429 counts
/// as a failed probe, so after it the first probe waits twice as long. In wall-clock time, not in
/// clean spells: on loopback the penalty is a second, and probes must stay rare there too.
pub const PROBE_FIRST: Duration = Duration::from_secs(120);
/// The longest a probe waits for (a failed probe costs a 429 and a minute's pause: then about
/// 3 % of the time).
pub const PROBE_MAX: Duration = Duration::from_secs(32 * 60);
/// A probe that ends in a 429 multiplies the time the next waits for by this: the budget was
/// where the ceiling said, so probes grow rare fast (after slow start's 429 the wait is four
/// minutes, then sixteen, then [`PROBE_MAX`]).
pub const PROBE_BACKOFF: u32 = 4;
/// The concurrency cap grows by one after this long without a 429.
const CONCURRENCY_GROWTH: Duration = Duration::from_secs(30);
/// The window over which the rate really sent is measured.
const MEASURE: Duration = Duration::from_secs(1);
/// The fewest requests a measurement of the rate really sent counts.
const MEASURE_REQUESTS: u32 = 5;

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
    /// A 429 without `Retry-After` pauses this long (the docs: at least a minute). It is also
    /// the API's penalty as far as the controller knows: the length of a burst and of a clean
    /// spell.
    pub rate_limited_wait: Duration,
    /// A `Retry-After` longer than this is capped to it.
    pub max_retry_after: Duration,
}

/// What a previous run learned, kept in the database (`pace_state`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    pub rate: f64,
    /// Just under the rate of the last 429, if one was ever seen.
    pub ceiling: Option<f64>,
    /// The highest rate the API answered clean, if one was ever measured.
    pub proven: Option<f64>,
    pub concurrency: usize,
    /// Time without a 429 the next probe waits for (doubled by each failed probe).
    pub probe_wait: Duration,
    /// Running time without a 429 (nor a probe) when the run ended: the next run's probe waits
    /// only for the rest of `probe_wait`.
    pub clean_for: Duration,
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
    /// The learned ceiling (just under the rate of the last 429), if any.
    pub ceiling: Option<f64>,
    /// The highest rate the API answered clean, if any was measured.
    pub proven: Option<f64>,
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
    /// Bumped by every decision on a 429, so the other answers of requests admitted before it
    /// only count.
    epoch: u64,
    /// Learned ceiling and when it was learned (where its CUBIC curve starts); `None` while in
    /// the first slow start.
    ceiling: Option<(f64, Instant)>,
    proven: Option<f64>,
    /// Growing as slow start does, above the learned ceiling.
    probing: bool,
    /// Time without a 429 the next probe waits for.
    probe_wait: Duration,
    /// The end of the last 429's pause: since when the API has answered clean.
    clean_since: Instant,
    /// The clean spell under way: since when, and its clean answers.
    spell_start: Instant,
    spell_answers: u32,
    /// The proof under way: since when, and its clean answers.
    proof_start: Instant,
    proof_answers: u32,
    /// The end of the burst the last cut answered (see [`Pace::throttled`]).
    burst_until: Instant,
    last_growth: Instant,
    concurrency: usize,
    in_flight: usize,
    /// Walk requests waiting for a place in flight; fan-out requests wait while any do.
    walks_waiting: usize,
    last_concurrency_change: Instant,
    window_start: Instant,
    window_count: u32,
    /// The window before the current one (none after a pause): with it, a 429 tells the rate
    /// really sent over the last second or two.
    previous_start: Instant,
    previous_count: u32,
    /// Requests per second really admitted, smoothed.
    measured: f64,
    peak: f64,
    start: f64,
    /// Clean answers since the last pause began.
    clean_since_pause: u64,
    /// Clean answers since the last 429 (any, in a burst or not).
    clean_since_429: u32,
    rate_limited: u64,
    paused: Duration,
}

/// The GCRA's tolerance at `rate`: how far ahead of the schedule `burst` slots may be used.
fn tolerance(rate: f64, burst: u32) -> Duration {
    // `rate` is at least FLOOR, so the interval is finite.
    Duration::from_nanos((1e9 / rate) as u64) * burst.saturating_sub(1)
}

impl State {
    /// The rate really sent over the last one to four seconds, when enough requests tell (and
    /// none of that time was a pause): what a 429 was drawn at.
    fn drawn(&self, now: Instant) -> Option<f64> {
        let span = now.saturating_duration_since(self.previous_start);
        let n = self.previous_count + self.window_count;
        (span >= MEASURE && span <= 4 * MEASURE && n >= MEASURE_REQUESTS)
            .then(|| f64::from(n) / span.as_secs_f64())
    }

    /// Restarts, from `from` (a pause's end), what a 429 interrupts: neither a proof nor a
    /// clean spell spans a 429, nor does a measure of the rate sent span a pause (`paused`).
    fn restart_measures(&mut self, from: Instant, paused: bool) {
        self.proof_start = from;
        self.proof_answers = 0;
        self.spell_start = from;
        self.spell_answers = 0;
        self.clean_since = from;
        if paused {
            self.window_start = from;
            self.window_count = 0;
            self.previous_start = from;
            self.previous_count = 0;
        }
    }
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
        // A value read back from the file steers the run: anything but a positive finite rate is
        // as good as none.
        let sane = |r: Option<f64>| r.filter(|r| r.is_finite() && *r > 0.0);
        let (rate, ceiling, proven, concurrency, probe_wait, clean_for) = match learned {
            Some(l) => {
                let rate = sane(Some(l.rate))
                    .unwrap_or(settings.start_rate)
                    .clamp(FLOOR, max_rate);
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
                    // Whatever the last run had waited, this one sends for PROBE_FIRST before a
                    // probe: a run restarted after a kill does not open with a 429.
                    l.clean_for
                        .min(l.probe_wait.clamp(PROBE_FIRST, PROBE_MAX) - PROBE_FIRST),
                )
            }
            None => (
                settings.start_rate.clamp(FLOOR, max_rate),
                None,
                None,
                settings.max_concurrent.max(1),
                PROBE_FIRST,
                Duration::ZERO,
            ),
        };
        // No burst credit at start: the first `burst` requests are spaced like the rest, since a
        // burst on top of a pace just under the budget goes over it.
        let tat = now + tolerance(rate, settings.burst);
        let clean_since = now.checked_sub(clean_for).unwrap_or(now);
        Self {
            state: Arc::new(Mutex::new(State {
                rate,
                tat,
                paused_until: None,
                epoch: 0,
                ceiling,
                proven,
                probing: false,
                probe_wait,
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
                let interval = Duration::from_nanos((1e9 / s.rate) as u64);
                let tolerance = tolerance(s.rate, self.settings.burst);
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
            if now.saturating_duration_since(s.window_start) >= MEASURE {
                let secs = now.saturating_duration_since(s.window_start).as_secs_f64();
                let sample = f64::from(s.window_count) / secs;
                let sparse = secs > 4.0 * MEASURE.as_secs_f64();
                s.measured = if sparse {
                    sample
                } else {
                    0.5 * s.measured + 0.5 * sample
                };
                // A window of sparse traffic says nothing about the last second or two.
                (s.previous_start, s.previous_count) = if sparse {
                    (now, 0)
                } else {
                    (s.window_start, s.window_count)
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
            proven: s.proven,
            concurrency: s.concurrency,
            rate_limited: s.rate_limited,
            paused_ms: s.paused.as_millis() as u64,
        }
    }

    /// What to keep for the next run: the pace, but never above the learned ceiling (a run may
    /// end while probing above it, and the next should not start with a 429). A ceiling that
    /// fell below the proven rate is kept as it is: the next run heals it after a clean spell,
    /// rather than starting above the last 429 it drew.
    pub fn learned(&self) -> Learned {
        let s = self.lock();
        Learned {
            rate: s.ceiling.map_or(s.rate, |(c, _)| s.rate.min(c)),
            ceiling: s.ceiling.map(|(c, _)| c),
            proven: s.proven,
            concurrency: s.concurrency,
            probe_wait: s.probe_wait,
            clean_for: Instant::now().saturating_duration_since(s.clean_since),
        }
    }

    /// The pace now, requests per second.
    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    /// The length of a burst and of a clean spell: the API's penalty as configured.
    fn spell(&self) -> Duration {
        self.settings.rate_limited_wait
    }

    fn grow(&self) {
        let mut s = self.lock();
        let now = Instant::now();
        if s.paused_until.is_some_and(|p| p > now) {
            return;
        }
        s.clean_since_pause += 1;
        s.clean_since_429 = s.clean_since_429.saturating_add(1);
        s.proof_answers += 1;
        let proving = now.saturating_duration_since(s.proof_start);
        if proving >= PROOF_WINDOW && s.proof_answers >= PROOF_ANSWERS {
            let sample = f64::from(s.proof_answers) / proving.as_secs_f64();
            s.proven = Some(s.proven.map_or(sample, |p| p.max(sample)));
            s.proof_start = now;
            s.proof_answers = 0;
        }
        s.spell_answers += 1;
        if now.saturating_duration_since(s.spell_start) >= self.spell() && s.spell_answers >= CLEAN_ANSWERS {
            self.clean_spell(&mut s, now);
        }
        // Never grow beyond twice what is really sent: a rate nobody uses proves nothing.
        let usable = (2.0 * s.measured).max(s.rate);
        let target = match s.ceiling {
            Some((w_max, at)) if !s.probing => {
                let k = RECOVERY.as_secs_f64();
                let t = now.saturating_duration_since(at).as_secs_f64().min(k);
                w_max * (1.0 - (1.0 - CUT) * ((k - t) / k).powi(3))
            }
            _ => {
                let dt = now.saturating_duration_since(s.last_growth).as_secs_f64();
                s.rate * (dt / SLOW_START_DOUBLING.as_secs_f64()).exp2()
            }
        };
        s.last_growth = now;
        s.rate = s
            .rate
            .max(target.min(usable))
            .clamp(FLOOR, self.settings.max_rate);
        s.peak = s.peak.max(s.rate);
        if s.concurrency < self.settings.max_concurrent
            && now.saturating_duration_since(s.last_concurrency_change) >= CONCURRENCY_GROWTH
        {
            s.concurrency += 1;
            s.last_concurrency_change = now;
            drop(s);
            self.freed.notify_waiters();
        }
    }

    /// A clean spell has passed: heal a ceiling that fell well under the proven rate, end a
    /// probe that held, or begin one when the API has answered clean for long enough.
    fn clean_spell(&self, s: &mut State, now: Instant) {
        s.spell_start = now;
        s.spell_answers = 0;
        let Some((ceiling, _)) = s.ceiling else {
            // The first slow start: it runs until the first 429 anyway.
            return;
        };
        // On the plateau at once: the rate then climbs as fast as slow start would (twice what
        // is really sent), because the API answered this rate clean before.
        let raise = |s: &mut State, to: f64| {
            s.ceiling = Some((to, now.checked_sub(RECOVERY).unwrap_or(now)));
            s.last_growth = now;
        };
        if let Some(proven) = s.proven.filter(|p| ceiling < HEAL_BELOW * p) {
            raise(s, proven);
            tracing::info!(
                from = ceiling,
                to = proven,
                "a clean spell: the learned ceiling rises back to the rate the API answered clean"
            );
        } else if s.probing {
            // The probe held: keep what it proved; the next probe waits only as long as the first.
            s.probing = false;
            s.probe_wait = PROBE_FIRST;
            if let Some(proven) = s.proven.filter(|p| *p > ceiling) {
                raise(s, proven);
            }
        } else if now.saturating_duration_since(s.clean_since) >= s.probe_wait {
            s.probing = true;
            s.last_growth = now;
            tracing::info!(
                ceiling,
                clean_secs = now.saturating_duration_since(s.clean_since).as_secs(),
                "probing above the learned ceiling after a long clean spell"
            );
        }
    }

    /// A 429 on a request admitted in `epoch`. Returns how long the pause lasts from now.
    ///
    /// The first 429 of a burst cuts the pace and pauses everything; requests admitted before
    /// that decision only count. A 429 right after a pause, before any clean answer, is the
    /// server's penalty outlasting ours: it pauses again and cuts nothing. So does a 429 within
    /// the burst a cut answered (the API's penalty, [`Settings::rate_limited_wait`], from the cut,
    /// however short the server's `Retry-After`: `Retry-After: 0` ends the pause, not the burst)
    /// — unless the pace is still above the proven rate and a full second of traffic at it has
    /// been measured, or the 429 ends a run of [`CLEAN_ANSWERS`] clean answers or more (the
    /// budget's edge after a short `Retry-After`): either is news about the budget.
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
        let drawn = s.drawn(now);
        let penalty_outlasting = s.paused_until.is_some() && s.clean_since_pause == 0;
        let in_burst = now < s.burst_until;
        let still_above_proven = drawn.is_some() && s.proven.is_some_and(|p| s.rate > p);
        // A run of clean answers ended by a 429 is the budget's edge, not a flood (that answers
        // one clean between two 429s): after a short `Retry-After` it is news about the budget.
        let at_the_edge = std::mem::take(&mut s.clean_since_429) >= CLEAN_ANSWERS;
        if penalty_outlasting || (in_burst && !still_above_proven && !at_the_edge) {
            let until = now + wait;
            let from = s.paused_until.map_or(now, |p| p.max(now));
            s.paused += until.saturating_duration_since(from);
            s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
            // No burst credit after a pause either: the slots it left unused are not the API's.
            s.tat = s.tat.max(until + tolerance(s.rate, self.settings.burst));
            let resume = s.paused_until.unwrap_or(until);
            s.restart_measures(resume, !wait.is_zero());
            tracing::warn!(
                pause_secs = wait.as_secs_f64(),
                "rate limited again within the same burst: pausing every stream, cutting nothing"
            );
            return wait;
        }
        // What was really being sent: over the last second or two when enough traffic tells
        // (during a climb that is under the pace of the moment, which overshot), else over the
        // current window; a rate nobody used says nothing about the budget. Otherwise the pace.
        let hit = match drawn {
            Some(drawn) => s.rate.min(drawn),
            None => {
                let elapsed = now.saturating_duration_since(s.window_start);
                let sent = if elapsed >= MEASURE && s.window_count >= MEASURE_REQUESTS {
                    f64::from(s.window_count) / elapsed.as_secs_f64()
                } else {
                    s.rate
                };
                s.rate.min(sent * 1.25)
            }
        }
        .max(FLOOR);
        // A failed probe learns nothing above the ceiling it left from: the rate it drew the 429
        // at overshot (slow start doubles every two seconds), so the ceiling goes back to the
        // last clean rate (the ceiling, or the proven rate if higher), never above the hit.
        let ceiling = match s.ceiling {
            Some((before, _)) if s.probing => {
                let clean = s.proven.map_or(before, |p| before.max(p * MARGIN));
                clean.min(hit * MARGIN)
            }
            _ => hit * MARGIN,
        }
        .max(FLOOR);
        // A 429 drawn at or below the proven rate disproves it: the budget dropped. Lowering it
        // here is what keeps a real drop from costing a 429 after every clean spell (a heal loop).
        if let (Some(proven), Some(drawn)) = (s.proven, drawn)
            && drawn <= proven
        {
            s.proven = Some((drawn * MARGIN).max(FLOOR));
        }
        // A 429 during slow start makes the next probe wait twice as long; a failed probe, news
        // that the budget is where it was, [`PROBE_BACKOFF`] times as long.
        if s.probing {
            s.probing = false;
            s.probe_wait = (s.probe_wait * PROBE_BACKOFF).min(PROBE_MAX);
        } else if s.ceiling.is_none() {
            s.probe_wait = (s.probe_wait * 2).min(PROBE_MAX);
        }
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
        let resume = already.map_or(until, |p| p.max(until));
        s.paused_until = Some(resume);
        s.clean_since_pause = 0;
        // No burst credit after a pause either: the slots it left unused are not the API's.
        s.tat = s.tat.max(until + tolerance(s.rate, self.settings.burst));
        s.last_growth = until;
        s.burst_until = now + wait.max(self.settings.rate_limited_wait);
        // Whatever the wait, the rate sent is measured afresh at the new pace: a further cut in
        // this burst needs a full window of it.
        s.restart_measures(resume, true);
        tracing::warn!(
            pause_secs = wait.as_secs_f64(),
            new_rate = s.rate,
            learned_ceiling = ceiling,
            proven_rate = s.proven,
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

    /// A simulated API with a fixed budget per second, counted from the first request after
    /// the previous second ended.
    struct Budget {
        per_second: u32,
        second: Instant,
        used: u32,
        /// Sent with every 429.
        retry_after: Option<Duration>,
    }

    impl Budget {
        fn new(per_second: u32) -> Self {
            Self {
                per_second,
                second: Instant::now(),
                used: 0,
                retry_after: None,
            }
        }

        /// Answers one admitted request: clean, or 429 when over the budget (returns true).
        fn answer(&mut self, p: Permit) -> bool {
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

    /// Sends `secs` seconds of back-to-back requests to `api`; returns the 429s seen.
    async fn drive_api(pace: &Pace, secs: u64, api: &mut Budget) -> u32 {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut throttles = 0;
        while Instant::now() < end {
            throttles += u32::from(api.answer(pace.admit(Lane::Walk).await));
        }
        throttles
    }

    /// Sends `secs` seconds of back-to-back requests, each answered clean unless the simulated
    /// API (a fixed budget per second) is over; returns the 429s seen.
    async fn drive(pace: &Pace, secs: u64, budget: u32) -> u32 {
        drive_api(pace, secs, &mut Budget::new(budget)).await
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
            proven: None,
            concurrency: 3,
            probe_wait: PROBE_FIRST,
            clean_for: Duration::ZERO,
        };
        let pace = Pace::new(settings(), Some(learned));
        let r = pace.report();
        assert_eq!((r.rate, r.ceiling, r.concurrency), (30.0, Some(32.0), 3));
        let throttles = drive(&pace, 300, 33).await;
        assert!(throttles <= 1, "{throttles}");
        assert!(pace.rate() >= 30.0 * CUT);
    }

    /// Sends `secs` seconds of back-to-back requests to an API that answers every other one
    /// 429 (with `retry_after`), whatever the pace; returns the 429s.
    async fn flood(pace: &Pace, secs: u64, retry_after: Option<Duration>) -> u32 {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut throttles = 0;
        let mut refuse = false;
        while Instant::now() < end {
            let p = pace.admit(Lane::Walk).await;
            if refuse {
                p.throttled(retry_after);
                throttles += 1;
            } else {
                p.success();
            }
            refuse = !refuse;
        }
        throttles
    }

    /// Sends clean requests back to back until the pace reaches `rate` or `limit` has passed;
    /// returns how long it took (`None`: not reached).
    async fn time_to_reach(pace: &Pace, rate: f64, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if pace.rate() >= rate {
                return Some(start.elapsed());
            }
            pace.admit(Lane::Walk).await.success();
        }
        None
    }

    /// A pace that ran clean at 50/s for a minute (its proven rate), with no ceiling yet.
    async fn proven_at_50() -> Pace {
        let pace = Pace::new(
            Settings {
                max_rate: 50.0,
                ..settings()
            },
            None,
        );
        drive(&pace, 60, u32::MAX).await;
        let r = pace.report();
        assert!(r.rate == 50.0 && r.proven.is_some_and(|p| p >= 45.0), "{r:?}");
        pace
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_flood_of_alternating_429s_a_clean_spell_heals_the_pace() {
        let pace = proven_at_50().await;
        let proven = pace.report().proven.unwrap();
        // Twenty minutes of an API refusing every other request: one cut a minute.
        let throttles = flood(&pace, 20 * 60, None).await;
        let r = pace.report();
        assert!(throttles >= 15, "{throttles}");
        assert!(r.rate < 0.1 * proven, "the flood drove the pace down: {r:?}");
        assert!(r.proven.unwrap() >= 0.9 * proven, "and proved nothing: {r:?}");
        // Clean again: within a clean spell (a minute) and a few seconds of climbing, the pace
        // is back at three quarters of what the API answered clean before.
        let took = time_to_reach(&pace, 0.75 * proven, Duration::from_secs(180)).await;
        assert!(
            took.is_some_and(|t| t <= Duration::from_secs(90)),
            "healed after {took:?}: {:?}",
            pace.report()
        );
        // And what the next run starts from is healed too.
        let kept = pace.learned();
        assert!(
            kept.rate >= 0.75 * proven && kept.ceiling >= Some(0.75 * proven),
            "{kept:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_with_retry_after_zero_cuts_once_a_burst_not_to_the_floor() {
        let pace = proven_at_50().await;
        let before = pace.rate();
        // Two minutes of every other request refused with `Retry-After: 0`: the pause ends at
        // once, the burst does not (a minute, the API's penalty), so at most three cuts.
        let throttles = flood(&pace, 120, Some(Duration::ZERO)).await;
        let r = pace.report();
        assert!(
            r.rate >= before * (CUT * MARGIN).powi(3) * 0.99,
            "at most one cut a burst: {r:?}"
        );
        assert!(throttles > 1_000, "{throttles}");
        assert_eq!(r.paused_ms, 0, "{r:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_real_budget_drop_is_followed_without_a_heal_loop() {
        let pace = Pace::new(settings(), None);
        drive(&pace, 600, 40).await;
        let learned = pace.report();
        assert!(learned.proven.is_some_and(|p| p >= 30.0), "{learned:?}");
        // The budget halves for good: a few 429s find it, then the heals must not draw one
        // every clean spell.
        let finding = drive(&pace, 300, 20).await;
        let later = drive(&pace, 1_200, 20).await;
        let r = pace.report();
        assert!(finding <= 6, "{finding} 429s to find the new budget: {r:?}");
        assert!(later <= 3, "{later} 429s in the twenty minutes after: {r:?}");
        assert!(
            r.rate <= 20.5 && r.rate >= 0.6 * 20.0,
            "settled under 20/s: {r:?}"
        );
        assert!(
            r.proven.is_some_and(|p| p <= 21.0),
            "the proven rate followed: {r:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_run_that_met_a_flood_probes_its_way_back_in_minutes() {
        // No proven rate: the API refused every other request from the first one.
        let pace = Pace::new(settings(), None);
        flood(&pace, 20 * 60, None).await;
        let r = pace.report();
        assert!(r.rate < 1.0 && r.proven.is_none_or(|p| p < 1.0), "{r:?}");
        // Clean again, with a budget of 40/s: a probe above the ceiling finds it within minutes
        // (two orders of magnitude), and the probes that fail stay rare.
        let mut api = Budget::new(40);
        let start = Instant::now();
        let mut throttles = 0;
        while pace.rate() < 20.0 && start.elapsed() < Duration::from_secs(900) {
            throttles += u32::from(api.answer(pace.admit(Lane::Walk).await));
        }
        let took = start.elapsed();
        assert!(
            took <= Duration::from_secs(420),
            "back at 20/s after {took:?}: {:?}",
            pace.report()
        );
        assert!(throttles <= 1, "{throttles} 429s on the way");
        let after = drive_api(&pace, 900, &mut api).await;
        assert!(after <= 3, "{after} 429s in the next fifteen minutes");
        assert!(pace.rate() > 0.75 * 40.0, "{:?}", pace.report());
    }

    #[tokio::test(start_paused = true)]
    async fn a_ceiling_resumed_far_under_the_proven_rate_heals_after_one_clean_spell() {
        let learned = Learned {
            rate: FLOOR,
            ceiling: Some(FLOOR),
            proven: Some(40.0),
            concurrency: 4,
            probe_wait: PROBE_FIRST,
            clean_for: Duration::ZERO,
        };
        let pace = Pace::new(settings(), Some(learned));
        let took = time_to_reach(&pace, 30.0, Duration::from_secs(300)).await;
        assert!(
            took.is_some_and(|t| t <= Duration::from_secs(90)),
            "{took:?} {:?}",
            pace.report()
        );
        assert_eq!(pace.report().ceiling, Some(40.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_cuts_again_while_the_pace_is_above_the_proven_rate() {
        // A pace far above a budget the API answered clean before, refused with
        // `Retry-After: 0`: the burst may cut again, once per measured second, until the pace is
        // under the proven rate — and no further.
        let learned = Learned {
            rate: 100.0,
            ceiling: None,
            proven: Some(40.0),
            concurrency: 4,
            probe_wait: PROBE_FIRST,
            clean_for: Duration::ZERO,
        };
        let pace = Pace::new(settings(), Some(learned));
        let mut api = Budget::new(40);
        api.retry_after = Some(Duration::ZERO);
        drive_api(&pace, 10, &mut api).await;
        let r = pace.report();
        assert!(r.rate <= 40.0 && r.rate >= 40.0 * CUT * MARGIN, "{r:?}");
    }
}

/// Review 2 (wt-review2): the design notes' bounds, checked with the default config's `burst`
/// of 10 (the tests above all use a burst of 1) against a simulated API with a fixed budget per
/// second. Both fail at d4a86aa.
#[cfg(test)]
mod review2 {
    use super::*;

    fn settings(burst: u32) -> Settings {
        Settings {
            start_rate: 5.0,
            max_rate: 1_000.0,
            burst,
            max_concurrent: 4,
            rate_limited_wait: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(600),
        }
    }

    /// `per_second` requests answered clean per wall-clock second, the rest 429.
    struct Budget {
        per_second: u32,
        second: Instant,
        used: u32,
    }

    impl Budget {
        fn answer(&mut self, p: Permit) -> bool {
            if Instant::now().duration_since(self.second) >= Duration::from_secs(1) {
                self.second = Instant::now();
                self.used = 0;
            }
            self.used += 1;
            let over = self.used > self.per_second;
            if over {
                p.throttled(None);
            } else {
                p.success();
            }
            over
        }
    }

    /// Settles for half an hour at 40/s, then the budget becomes `then`; returns the 429s and
    /// clean answers of the next two hours.
    async fn two_hours(burst: u32, then: u32) -> (u32, u32) {
        let pace = Pace::new(settings(burst), None);
        let mut api = Budget {
            per_second: 40,
            second: Instant::now(),
            used: 0,
        };
        run(&pace, &mut api, 1_800).await;
        api.per_second = then;
        run(&pace, &mut api, 7_200).await
    }

    /// `secs` of back-to-back requests to `api`: the 429s and the clean answers.
    async fn run(pace: &Pace, api: &mut Budget, secs: u64) -> (u32, u32) {
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

    /// docs/design.md: "at a steady budget a failed probe costs one 429 and its pause every half
    /// hour at most". Measured at d4a86aa: 8 429s in two hours with a burst of 1, 12 with the
    /// default burst of 10 (each probe's 429 is followed by one or two more, a minute apart: the
    /// ceiling it sets is over the budget, and the `burst` slots fire at once after each pause).
    #[tokio::test(start_paused = true)]
    async fn at_a_steady_budget_a_probe_costs_one_429_per_half_hour() {
        for burst in [1, 10] {
            let (refused, _) = two_hours(burst, 40).await;
            assert!(
                refused <= 4,
                "burst {burst}: {refused} 429s in two hours at a steady budget"
            );
        }
    }

    /// docs/design.md: "a budget that really dropped costs one more 429, not one after every
    /// clean spell". Measured at d4a86aa with the default burst: 28 429s in the two hours after
    /// the budget halves (a probe every ~35 min, each followed by five more cuts a minute apart,
    /// six minutes of silence for every stream), 59 % of the budget used.
    #[tokio::test(start_paused = true)]
    async fn a_budget_halved_costs_a_few_429s_not_a_cascade_per_probe() {
        let (refused, clean) = two_hours(10, 20).await;
        assert!(
            refused <= 10,
            "{refused} 429s in two hours after the budget halved"
        );
        assert!(clean >= 144_000 * 3 / 4, "{clean} of 144000");
    }

    /// The probe's wait is not kept in `pace_state`: every run starts it at two minutes, so at
    /// a steady budget every run longer than that pays a failed probe, never one per half hour.
    #[tokio::test(start_paused = true)]
    async fn runs_of_five_minutes_at_a_steady_budget_do_not_each_pay_a_probe() {
        let mut learned = None;
        let mut per_run = Vec::new();
        for _ in 0..8 {
            let pace = Pace::new(settings(10), learned);
            let mut api = Budget {
                per_second: 40,
                second: Instant::now(),
                used: 0,
            };
            per_run.push(run(&pace, &mut api, 300).await.0);
            learned = Some(pace.learned());
        }
        // The first run finds the budget; after it, a probe every half hour at most: at most
        // one 429 in the seven runs after it (35 minutes).
        let later: u32 = per_run[1..].iter().sum();
        assert!(later <= 2, "429s per five-minute run: {per_run:?}");
    }
}

/// The fixes of review 2, each with the default config's `burst` of 10.
#[cfg(test)]
mod burst_tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            start_rate: 5.0,
            max_rate: 1_000.0,
            burst: 10,
            max_concurrent: 4,
            rate_limited_wait: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(600),
        }
    }

    /// `per_second` requests answered clean per wall-clock second, the rest 429 with
    /// `retry_after`.
    struct Budget {
        per_second: u32,
        second: Instant,
        used: u32,
        retry_after: Option<Duration>,
    }

    impl Budget {
        fn new(per_second: u32) -> Self {
            Self {
                per_second,
                second: Instant::now(),
                used: 0,
                retry_after: None,
            }
        }

        fn answer(&mut self, p: Permit) -> bool {
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
    async fn run(pace: &Pace, api: &mut Budget, secs: u64) -> (u32, u32) {
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

    fn learned(rate: f64, ceiling: f64, clean_for: Duration, probe_wait: Duration) -> Learned {
        Learned {
            rate,
            ceiling: Some(ceiling),
            proven: Some(ceiling),
            concurrency: 4,
            probe_wait,
            clean_for,
        }
    }

    /// Admissions in the second from the first one on (which waits out any pause), sent back to
    /// back and answered clean.
    async fn sent_in_a_second(pace: &Pace) -> u32 {
        pace.admit(Lane::Walk).await.success();
        let end = Instant::now() + Duration::from_secs(1);
        let mut n = 1;
        while Instant::now() < end {
            pace.admit(Lane::Walk).await.success();
            n += 1;
        }
        n
    }

    #[tokio::test(start_paused = true)]
    async fn no_burst_credit_at_start_nor_after_a_pause() {
        let pace = Pace::new(settings(), Some(learned(38.0, 39.0, Duration::ZERO, PROBE_FIRST)));
        // At start: 38 slots a second, spaced, not 38 + 9 at once.
        assert!(sent_in_a_second(&pace).await <= 39);
        pace.admit(Lane::Walk).await.throttled(None);
        let rate = pace.rate();
        // Right after the pause: the new pace, not the pace and a burst on top.
        let n = sent_in_a_second(&pace).await;
        // (It may grow a little in that second; a burst would add nine.)
        assert!(f64::from(n) <= rate + 4.0, "{n} in the first second at {rate}/s");
        // A pace resumed just under the budget draws no 429.
        let pace = Pace::new(settings(), Some(learned(39.0, 39.0, Duration::ZERO, PROBE_FIRST)));
        let (refused, _) = run(&pace, &mut Budget::new(40), 100).await;
        assert_eq!(refused, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_sets_the_ceiling_from_the_last_clean_rate() {
        // Settled just under a budget of 40/s, the probe due two minutes in.
        let kept = Learned {
            proven: Some(39.3),
            ..learned(38.0, 38.9, Duration::from_secs(120), 2 * PROBE_FIRST)
        };
        let pace = Pace::new(settings(), Some(kept));
        let mut api = Budget::new(40);
        let start = Instant::now();
        while !api.answer(pace.admit(Lane::Walk).await) {}
        let r = pace.report();
        assert!(start.elapsed() < Duration::from_secs(300), "{r:?}");
        // The probe overshot (slow start doubles every two seconds; 3 % under what it drew the
        // 429 at is 40.4 here), but the ceiling is the last clean rate: the one it left.
        assert_eq!(r.ceiling, Some(38.9), "{r:?}");
        // So the climb back draws no 429 before the next probe, sixteen minutes on.
        let (later, _) = run(&pace, &mut api, 15 * 60).await;
        assert_eq!(later, 0, "{:?}", pace.report());
        assert_eq!(pace.learned().probe_wait, 4 * 2 * PROBE_FIRST);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_resumed_after_a_kill_does_not_probe_in_its_first_two_minutes() {
        // The last run had been clean for 31 of the 32 minutes the probe waits for.
        let kept = learned(38.0, 39.0, Duration::from_secs(31 * 60), PROBE_MAX);
        let pace = Pace::new(settings(), Some(kept));
        let (refused, _) = run(&pace, &mut Budget::new(40), 119).await;
        assert_eq!(refused, 0, "{:?}", pace.report());
        // What it keeps for the next: the same wait, and the clean time since.
        let next = pace.learned();
        assert_eq!(next.probe_wait, PROBE_MAX);
        assert!(next.clean_for >= Duration::from_secs(30 * 60 + 119), "{next:?}");
    }

    /// 429s and clean answers in two hours after half an hour at 40/s.
    async fn two_hours(then: u32, retry_after: Option<Duration>) -> (u32, u32) {
        let pace = Pace::new(settings(), None);
        let mut api = Budget::new(40);
        api.retry_after = retry_after;
        run(&pace, &mut api, 1_800).await;
        api.per_second = then;
        let out = run(&pace, &mut api, 7_200).await;
        eprintln!(
            "then {then} retry-after {retry_after:?}: {out:?} {:?}",
            pace.report()
        );
        out
    }

    /// docs/design.md's figures: a steady budget, and a halved one with and without a short
    /// `Retry-After`.
    #[tokio::test(start_paused = true)]
    async fn what_two_hours_cost_at_a_steady_and_a_halved_budget() {
        let (steady, clean) = two_hours(40, None).await;
        assert!(steady <= 4 && clean >= 288_000 * 9 / 10, "{steady} {clean}");
        let (halved, clean) = two_hours(20, None).await;
        assert!(halved <= 10 && clean >= 144_000 * 85 / 100, "{halved} {clean}");
        let one_second = Some(Duration::from_secs(1));
        let (halved, clean) = two_hours(20, one_second).await;
        assert!(halved <= 10 && clean >= 144_000 * 85 / 100, "{halved} {clean}");
    }

    #[tokio::test(start_paused = true)]
    async fn five_minute_runs_keep_the_probe_schedule() {
        let mut kept = None;
        let mut per_run = Vec::new();
        for _ in 0..12 {
            let pace = Pace::new(settings(), kept);
            per_run.push(run(&pace, &mut Budget::new(40), 300).await.0);
            kept = Some(pace.learned());
        }
        eprintln!("429s per five-minute run: {per_run:?}");
        // Slow start's 429, then probes after four, sixteen and 32 minutes of running time.
        assert!(per_run.iter().sum::<u32>() <= 4, "{per_run:?}");
        assert!(kept.is_some_and(|k| k.probe_wait == PROBE_MAX), "{kept:?}");
    }
}
