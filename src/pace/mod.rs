//! Adaptive pace: one controller for every request the job sends (token endpoint included), so
//! the sum of all streams stays under Understory's rate budget — a budget the API never states
//! and signals only with a bare 429 (`docs/understory-api.md` §4).
//!
//! Terms:
//! - *rate*: requests per second the controller admits now, spaced evenly (GCRA: each admission
//!   reserves the next slot, `burst` slots may be used at once).
//! - *concurrency*: requests in flight at once, the API's other limit.
//! - *learned ceiling* (`w_max`): just under the rate at which the API last answered 429.
//! - *proven rate*: the highest rate the API really answered clean, measured over
//!   `PROOF_WINDOW` of answers with no 429 among them. Evidence, not a guess: the ceiling
//!   falls back under it only on a 429 drawn at or below it.
//! - *pause*: after a 429 nothing is sent, by any stream, until the wait is over.
//! - *burst*: the 429s that follow a cut within the API's penalty (`Settings::rate_limited_wait`,
//!   a minute); they answer for the same overshoot, so they cut no further unless they are news
//!   about the budget (see `Pace::throttled` in `throttle.rs`).
//! - *clean spell*: the API's penalty length again without a 429, with at least
//!   `CLEAN_ANSWERS` clean answers in it (silence proves nothing).
//!
//! The shape follows the AWS SDKs' `adaptive` retry mode (a token-bucket rate that grows along a
//! CUBIC curve while answers are clean and is cut on throttling), tuned for an API whose every
//! 429 costs a minute of silence: before the first 429 the rate doubles every
//! `SLOW_START_DOUBLING` (never beyond twice what was really sent); a 429 cuts it to
//! `CUT` × the rate that triggered it and pauses everything; it then climbs back to the learned
//! ceiling over `RECOVERY`, flattening out there.
//!
//! A ceiling is only as good as the 429 that set it, and 429s lie: an API answering every other
//! request 429 for a while (a deploy, a proxy, a shared budget) drives the ceiling to the floor
//! though the budget never moved. So the ceiling heals: after a clean spell, a ceiling below
//! `HEAL_BELOW` × the proven rate is raised back to the proven rate at once (the rate follows
//! as fast as slow start would); and after `PROBE_FIRST` without a 429 the controller *probes*
//! above the ceiling with slow start again, because without a proven rate (a first run that met
//! such a flood) nothing else could ever raise it. A probe that ends in a 429 sets the ceiling
//! back to the last clean rate and makes the next one wait `PROBE_BACKOFF` times as long (up to
//! `PROBE_MAX`), so at a real budget probes grow rare; one that holds for a clean spell resets
//! the wait.
//!
//! Unlike the SDKs, the learned rate, ceiling, proven rate and the probe's schedule are kept in
//! the database, so the next run starts where this one ended instead of finding the budget again.
//!
//! Rooms: `state` (the controller's state, and how a run starts it), `gcra` (spacing), `measure`
//! (the rate really sent), `heal` (growth, the proven rate, heals and probes), `throttle` (a
//! 429).
//!
//! Time is tokio's, so tests drive it with a paused clock.

use crate::poison::Unpoisoned as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

mod fit;
mod gcra;
mod heal;
mod measure;
mod state;
mod throttle;

use state::State;

pub(crate) mod permit;
pub(crate) use permit::{Lane, Permit};

/// A 429 cuts the rate to this share of the rate that drew it.
pub(crate) const CUT: f64 = 0.8;
/// Time to climb back from the cut to the learned ceiling. Long on purpose: a 429 costs a pause
/// of a minute, so the curve approaches the ceiling slowly and holds there; going above it is a
/// probe's job (see the module's documentation).
pub(crate) const RECOVERY: Duration = Duration::from_secs(300);
/// The learned ceiling sits this far under the rate that drew a 429: that rate was over the
/// budget by definition, so the curve's plateau belongs just below it.
pub(crate) const MARGIN: f64 = 0.97;
/// A ceiling set from the last second of a climb (slow start's 429) sits this far under that
/// second's count: a fixed window's count in the last second may include the end of the window
/// before it, so the count can run a little over the budget.
pub(crate) const CLIMB_MARGIN: f64 = 0.93;
/// Before the first 429, and while probing, the rate doubles this often while answers are clean.
pub(crate) const SLOW_START_DOUBLING: Duration = Duration::from_secs(2);
/// The slowest pace the controller goes down to, whatever happens.
pub(crate) const FLOOR: f64 = 0.2;
/// A clean spell needs at least this many clean answers besides its length: a quiet minute
/// says nothing about the API, and an API answering every other request 429 gives one clean
/// answer between two 429s.
pub(crate) const CLEAN_ANSWERS: u32 = 5;
/// A proof of the proven rate: clean answers over at least this long, or a clean spell if longer
/// (`Pace::proof_window`), and at least [`PROOF_ANSWERS`] of them, with no 429 among them. Two
/// seconds at least: long enough to average a burst of slots out.
pub(crate) const PROOF_WINDOW: Duration = Duration::from_secs(2);
/// The fewest clean answers one proof counts.
pub(crate) const PROOF_ANSWERS: u32 = 10;
/// After a clean spell, a learned ceiling under this share of the proven rate is raised to the
/// proven rate. Not 1.0: a ceiling a little under it is the CUBIC curve's normal state.
pub(crate) const HEAL_BELOW: f64 = 0.9;
/// Time without a 429 before the first probe above the learned ceiling. Slow start's 429 counts
/// as a failed probe, so after it the first probe waits twice as long. In wall-clock time, not in
/// clean spells: on loopback the penalty is a second, and probes must stay rare there too.
pub(crate) const PROBE_FIRST: Duration = Duration::from_secs(120);
/// A run that starts within this long of the last run's end (or of its last save, when it was
/// killed) sends this long at least before it probes: the run after a killed or stopped one
/// starts where it left off, without a 429 in its first minutes. Runs that start later (the next
/// tick of a timer) probe when one is due, however short they are.
pub(crate) const RESTART_QUIET: Duration = Duration::from_secs(150);
/// The longest a probe waits for (a failed probe costs a 429 and a minute's pause: then about
/// 3 % of the time).
pub(crate) const PROBE_MAX: Duration = Duration::from_secs(32 * 60);
/// Slow start's 429 can set a ceiling to keep only once slow start has grown the pace this many
/// times over its start (see `State::learn_from_429`).
pub(crate) const CREDIBLE_GROWTH: f64 = 4.0;
/// A probe's first step: the pace this far above the learned ceiling, held for a clean spell.
/// Small, since at the budget this is the step that fails, and the 429 costs a minute; each step
/// that holds doubles the next.
pub(crate) const PROBE_STEP: f64 = 0.05;
/// A probe that ends in a 429 multiplies the time the next waits for by this: the budget was
/// where the ceiling said, so probes grow rare fast (after slow start's 429 the wait is four
/// minutes, then sixteen, then [`PROBE_MAX`]).
pub(crate) const PROBE_BACKOFF: u32 = 4;
/// The concurrency cap grows by one after this long without a 429.
const CONCURRENCY_GROWTH: Duration = Duration::from_secs(30);

/// What the controller is told at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Requests per second on a first run (no learned pace yet).
    pub(crate) start_rate: f64,
    /// Never faster than this, whatever the API tolerates.
    pub(crate) max_rate: f64,
    /// Slots that may be used at once after a quiet spell (never at a run's start nor right
    /// after a pause, see `gcra.rs`).
    pub(crate) burst: u32,
    /// The most requests in flight at once (and the start).
    pub(crate) max_concurrent: usize,
    /// A 429 without `Retry-After` pauses this long (the docs: at least a minute). It is also
    /// the API's penalty as far as the controller knows: the length of a burst and of a clean
    /// spell.
    pub(crate) rate_limited_wait: Duration,
    /// A `Retry-After` longer than this is capped to it.
    pub(crate) max_retry_after: Duration,
}

/// What a previous run learned, kept in the database (`pace_state`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    pub(crate) rate: f64,
    /// Just under the rate of the last 429, if one was ever seen.
    pub(crate) ceiling: Option<f64>,
    /// The highest rate the API answered clean, if one was ever measured.
    pub(crate) proven: Option<f64>,
    pub(crate) concurrency: usize,
    /// Time without a 429 the next probe waits for (doubled by each failed probe).
    pub(crate) probe_wait: Duration,
    /// Running time without a 429 (nor a probe) when the run ended: the next run's probe waits
    /// only for the rest of `probe_wait`.
    pub(crate) clean_for: Duration,
    /// How long ago it was kept, if known: a run that starts within [`RESTART_QUIET`] of the
    /// last save (a restart after a kill, say) holds back its probe; `None` counts as just now.
    pub(crate) saved_ago: Option<Duration>,
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
    /// Requests per second really sent lately (the pace is a ceiling on it).
    pub(crate) sent_rate: f64,
    /// The learned ceiling (just under the rate of the last 429), if any.
    pub ceiling: Option<f64>,
    /// The highest rate the API answered clean, if any was measured.
    pub proven: Option<f64>,
    pub(crate) concurrency: usize,
    /// 429 answers, from any endpoint.
    pub rate_limited: u64,
    /// Time every stream spent paused after 429s, milliseconds.
    pub paused_ms: u64,
}

/// The shared controller. Cheap to clone.
#[derive(Clone)]
pub struct Pace {
    settings: Arc<Settings>,
    state: Arc<Mutex<State>>,
    freed: Arc<Notify>,
}

impl Pace {
    pub fn new(settings: Settings, learned: Option<Learned>) -> Self {
        let settings = Settings {
            max_rate: settings.max_rate.max(FLOOR),
            ..settings
        };
        Self {
            state: Arc::new(Mutex::new(State::new(&settings, learned, Instant::now()))),
            settings: Arc::new(settings),
            freed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.locked()
    }

    /// Waits for a place in flight, then for the next free slot (and for any pause to end).
    pub(crate) async fn admit(&self, lane: Lane) -> Permit {
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
                let slot = s.reserve(Instant::now(), self.settings.burst);
                (slot, s.epoch)
            };
            tokio::time::sleep_until(slot).await;
            let mut s = self.lock();
            let now = Instant::now();
            // A pause that began while this request waited for its slot applies to it too.
            if s.paused_until.is_some_and(|p| p > now) {
                continue;
            }
            s.count_admission(now);
            permit.epoch = epoch;
            return permit;
        }
    }

    /// The controller's figures now.
    pub(crate) fn report(&self) -> Report {
        let s = self.lock();
        Report {
            start_rate: s.start,
            rate: s.rate,
            peak_rate: s.peak,
            sent_rate: s.measured,
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
    pub(crate) fn learned(&self) -> Learned {
        let s = self.lock();
        Learned {
            rate: s.ceiling.map_or(s.rate, |(c, _)| s.rate.min(c)),
            ceiling: s.ceiling.map(|(c, _)| c),
            proven: s.proven,
            concurrency: s.concurrency,
            probe_wait: s.probe_wait,
            clean_for: Instant::now().saturating_duration_since(s.clean_since),
            saved_ago: None,
        }
    }

    /// The pace now, requests per second.
    #[cfg(test)]
    pub(crate) fn rate(&self) -> f64 {
        self.lock().rate
    }

    /// The length of a burst and of a clean spell: the API's penalty as configured.
    fn spell(&self) -> Duration {
        self.settings.rate_limited_wait
    }

    /// How long a proof of the proven rate lasts: a clean spell, and at least [`PROOF_WINDOW`].
    /// A budget counted over a window of up to the penalty's length lets a short stretch far
    /// above it pass (a ten-second window takes four times its rate for two seconds): only a
    /// stretch as long as the window proves a rate.
    fn proof_window(&self) -> Duration {
        self.spell().max(PROOF_WINDOW)
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

#[cfg(test)]
mod bound_tests;
#[cfg(test)]
mod burst_tests;
#[cfg(test)]
mod simulated;
#[cfg(test)]
mod tests;
