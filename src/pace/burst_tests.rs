//! The pace with the default config's `burst` of 10: no burst credit at start or after a pause, the
//! probe schedule kept across runs, a failed probe's ceiling, a short `Retry-After` after a drop.

use super::simulated::{Budget, run, settings as simulated};
use super::*;

fn settings() -> Settings {
    simulated(10, 600)
}

fn learned(rate: f64, ceiling: f64, clean_for: Duration, probe_wait: Duration) -> Learned {
    Learned {
        rate,
        ceiling: Some(ceiling),
        proven: Some(ceiling),
        concurrency: 4,
        probe_wait,
        clean_for,
        saved_ago: None,
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
async fn a_run_resumed_after_a_kill_does_not_probe_in_its_first_minutes() {
    // The last run had been clean for 31 of the 32 minutes the probe waits for.
    let kept = learned(38.0, 39.0, Duration::from_secs(31 * 60), PROBE_MAX);
    let pace = Pace::new(settings(), Some(kept));
    let (refused, _) = run(&pace, &mut Budget::new(40), RESTART_QUIET.as_secs() - 1).await;
    assert_eq!(refused, 0, "{:?}", pace.report());
    // What it keeps for the next: the same wait, and the clean time since (no more than the
    // wait less RESTART_QUIET at its start).
    let next = pace.learned();
    assert_eq!(next.probe_wait, PROBE_MAX);
    assert!(
        next.clean_for >= PROBE_MAX - RESTART_QUIET + RESTART_QUIET - Duration::from_secs(1),
        "{next:?}"
    );
    // It probes soon after.
    let (refused, _) = run(&pace, &mut Budget::new(40), 60).await;
    assert_eq!(refused, 1, "{:?}", pace.report());
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
    // Slow start's 429, then probes once its ceiling's confirmation (sixteen minutes) and each
    // failed probe (32) have been waited out.
    assert!(per_run.iter().sum::<u32>() <= 4, "{per_run:?}");
    assert!(kept.is_some_and(|k| k.probe_wait == PROBE_MAX), "{kept:?}");
}

/// After the budget halves: the cuts that find it (to 78 % of the rate each, then 3 % steps up
/// the curve, and a heal back to the rate proven before the drop that costs one more) in the
/// first five minutes, then a failed probe per half hour, as at a steady budget; the same when
/// every 429 says `Retry-After: 1`.
#[tokio::test(start_paused = true)]
async fn a_halved_budget_is_found_in_five_minutes_then_probed_every_half_hour() {
    for retry_after in [None, Some(Duration::from_secs(1))] {
        let pace = Pace::new(settings(), None);
        let mut api = Budget::new(40);
        api.retry_after = retry_after;
        run(&pace, &mut api, 1_800).await;
        api.per_second = 20;
        let (finding, _) = run(&pace, &mut api, 300).await;
        let (after, _) = run(&pace, &mut api, 115 * 60).await;
        assert!(finding <= 7, "{retry_after:?}: {finding} 429s to find it");
        assert!(
            after <= 4,
            "{retry_after:?}: {after} 429s in the 115 minutes after"
        );
    }
}
