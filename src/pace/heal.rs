//! Growth and healing: the pace climbs while answers are clean (slow start, then the CUBIC
//! curve to the learned ceiling); the *proven rate* is measured; after a clean spell a ceiling far
//! under the proven rate heals, and after long enough without a 429 the pace *probes* above the
//! ceiling. The probe's schedule (`probe_wait`, `clean_since`) outlives the run in `Learned`.

use tokio::time::Instant;

use super::state::State;
use super::{
    CLEAN_ANSWERS, CONCURRENCY_GROWTH, CREDIBLE_GROWTH, CUT, FLOOR, HEAL_BELOW, MARGIN, PROBE_BACKOFF,
    PROBE_FIRST, PROBE_MAX, PROBE_STEP, PROOF_ANSWERS, Pace, RECOVERY, SLOW_START_DOUBLING,
};

impl Pace {
    /// A clean answer: the proof and the clean spell under way count it, and the pace grows
    /// along its curve (slow start before the first 429 and while probing).
    pub(super) fn grow(&self) {
        let mut s = self.lock();
        let now = Instant::now();
        if s.paused_until.is_some_and(|p| p > now) {
            return;
        }
        s.clean_since_pause += 1;
        s.shot.count(now);
        s.clean_since_429 = s.clean_since_429.saturating_add(1);
        s.proof_answers += 1;
        let proving = now.saturating_duration_since(s.proof_start);
        if proving >= self.proof_window() && s.proof_answers >= PROOF_ANSWERS {
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
            // A probe at an established budget is a step above the ceiling, held (see
            // `clean_spell`); before, it grows as slow start does.
            Some((w_max, _)) if s.probing && s.established() => w_max * (1.0 + s.probe_step),
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
        // Slow start's ceiling held a clean spell: it is what the API accepted in the second
        // before its 429, confirmed, the budget of a short window. The next probe waits as after
        // a failed one. (A flood of 429s does not confirm its ceiling: its next shot ends in
        // another 429, and `pause_again` drops the confirmation.)
        if std::mem::take(&mut s.confirming) {
            s.probe_wait = (s.probe_wait * PROBE_BACKOFF).min(PROBE_MAX);
        }
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
        } else if s.probing && s.established() {
            // The step held a clean spell: it is the new ceiling, and the probe goes on with a
            // step twice as large, while at the budget the first small step is the one that
            // fails. The next probe waits as long as this one did.
            // Only a step really sent proves anything: with too little work to fill it (a quiet
            // stretch of a run), the probe ends with nothing learned.
            let step = ceiling * (1.0 + s.probe_step);
            if s.measured >= 0.95 * step {
                raise(s, step.max(s.proven.unwrap_or(0.0)).min(self.settings.max_rate));
                s.probe_step *= 2.0;
            } else {
                s.probing = false;
            }
        } else if s.probing {
            // A slow-start probe held (a ceiling far under the budget, as a first run that met
            // a flood leaves): keep what it proved; the next probe waits only as long as the
            // first.
            s.probing = false;
            s.probe_wait = PROBE_FIRST;
            if let Some(proven) = s.proven.filter(|p| *p > ceiling) {
                raise(s, proven);
            }
        } else if now.saturating_duration_since(s.clean_since) >= s.probe_wait {
            s.probing = true;
            s.probe_step = PROBE_STEP;
            s.last_growth = now;
            tracing::info!(
                ceiling,
                clean_secs = now.saturating_duration_since(s.clean_since).as_secs(),
                "probing above the learned ceiling after a long clean spell"
            );
        }
    }
}

impl State {
    /// Whether the ceiling is an established budget: confirmed, fitted, or found again by
    /// failed probes until they wait the longest. Its probes are small steps; before, a probe
    /// grows as slow start does, since the ceiling may be far under the budget.
    pub(super) fn established(&self) -> bool {
        self.probe_wait >= PROBE_MAX
    }

    /// The ceiling a 429 that hit `hit` sets: 3 % under it ([`MARGIN`]), except after a failed
    /// probe, which learns nothing above the ceiling it left from: the rate it drew the 429 at
    /// overshot (slow start doubles every two seconds), so the ceiling goes back to the last
    /// clean rate (the ceiling, or the proven rate if higher), never above the hit.
    pub(super) fn ceiling_after_429(&self, hit: f64) -> f64 {
        match self.ceiling {
            Some((before, _)) if self.probing => {
                let clean = self.proven.map_or(before, |p| before.max(p * MARGIN));
                clean.min(hit * MARGIN)
            }
            _ => hit * MARGIN,
        }
        .max(FLOOR)
    }

    /// What a cut's 429 teaches the proven rate and the probe's schedule.
    pub(super) fn learn_from_429(&mut self, drawn: Option<f64>) {
        // A 429 drawn at or below the proven rate disproves it: the budget dropped. Lowering it
        // here is what keeps a real drop from costing a 429 after every clean spell (a heal
        // loop).
        if let (Some(proven), Some(drawn)) = (self.proven, drawn)
            && drawn <= proven
        {
            self.proven = Some((drawn * MARGIN).max(FLOOR));
        }
        // A ceiling slow start's 429 sets only the next shot can confirm, and only when slow
        // start had grown the pace fourfold before it: a 429 at the start pace (an API's
        // concurrency cap, a proxy, an outage) tells nothing about the budget, and a ceiling
        // confirmed there would crawl until the next probe.
        self.confirming = self.ceiling.is_none() && self.rate >= CREDIBLE_GROWTH * self.start;
        // A failed probe, news that the budget is where it was, makes the next wait
        // [`PROBE_BACKOFF`] times as long.
        if self.probing {
            self.probing = false;
            self.probe_wait = (self.probe_wait * PROBE_BACKOFF).min(PROBE_MAX);
        } else if self.ceiling.is_none() {
            // Slow start's 429 makes the next probe wait twice as long, or the longest if the
            // ceiling it sets holds a clean spell (`clean_spell`).
            self.probe_wait = (self.probe_wait * 2).min(PROBE_MAX);
        }
    }
}
