//! The controller against simulated APIs, with a burst of 1 (spacing alone).

use super::simulated::{Budget, run, settings as simulated};
use super::*;

fn settings() -> Settings {
    simulated(1, 120)
}

/// Sends `secs` seconds of back-to-back requests, each answered clean unless the simulated
/// API (a fixed budget per second) is over; returns the 429s seen.
async fn drive(pace: &Pace, secs: u64, budget: u32) -> u32 {
    run(pace, &mut Budget::new(budget), secs).await.0
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
        saved_ago: None,
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

/// Back-to-back requests to `api` until the pace reaches `rate` or `limit` has passed: how long
/// it took, and the 429s on the way.
async fn climb_to(pace: &Pace, api: &mut Budget, rate: f64, limit: Duration) -> (Duration, u32) {
    let start = Instant::now();
    let mut refused = 0;
    while pace.rate() < rate && start.elapsed() < limit {
        refused += u32::from(api.answer(pace.admit(Lane::Walk).await));
    }
    (start.elapsed(), refused)
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
    let (took, throttles) = climb_to(&pace, &mut api, 20.0, Duration::from_secs(900)).await;
    assert!(
        took <= Duration::from_secs(420),
        "back at 20/s after {took:?}: {:?}",
        pace.report()
    );
    assert!(throttles <= 1, "{throttles} 429s on the way");
    let after = run(&pace, &mut api, 900).await.0;
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
        saved_ago: None,
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
        saved_ago: None,
    };
    let pace = Pace::new(settings(), Some(learned));
    let mut api = Budget::new(40);
    api.retry_after = Some(Duration::ZERO);
    run(&pace, &mut api, 10).await;
    let r = pace.report();
    assert!(r.rate <= 40.0 && r.rate >= 40.0 * CUT * MARGIN, "{r:?}");
}

/// A 429 at the start pace that was not the budget's (an API's concurrency cap, a proxy): the
/// ceiling it sets is not confirmed, and the pace is back near a budget of 40/s within minutes,
/// not after the half hour a confirmed ceiling waits.
#[tokio::test(start_paused = true)]
async fn a_429_at_the_start_pace_is_climbed_out_of_in_minutes() {
    let pace = Pace::new(settings(), None);
    for _ in 0..5 {
        pace.admit(Lane::Walk).await.success();
    }
    pace.admit(Lane::Walk).await.throttled(None);
    let r = pace.report();
    assert!(r.ceiling.is_some_and(|c| c < 10.0), "{r:?}");
    let (took, refused) = climb_to(&pace, &mut Budget::new(40), 30.0, Duration::from_secs(1_800)).await;
    assert!(
        took <= Duration::from_secs(420),
        "back at 30/s after {took:?}: {:?}",
        pace.report()
    );
    assert!(refused <= 1, "{refused} 429s on the way");
}

/// A probe step the run had too little work to send holds no clean spell's worth of proof: an
/// established ceiling does not climb while the run idles along under it.
#[tokio::test(start_paused = true)]
async fn a_probe_step_not_really_sent_does_not_raise_the_ceiling() {
    let kept = Learned {
        rate: 38.8,
        ceiling: Some(38.8),
        proven: Some(38.8),
        concurrency: 4,
        probe_wait: PROBE_MAX,
        clean_for: PROBE_MAX,
        saved_ago: Some(Duration::from_secs(3_600)),
    };
    let pace = Pace::new(settings(), Some(kept));
    // Twenty minutes at 5 requests a second, all clean.
    let end = Instant::now() + Duration::from_secs(1_200);
    while Instant::now() < end {
        pace.admit(Lane::Walk).await.success();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = pace.report();
    assert!(r.ceiling.is_some_and(|c| c <= 38.8 * 1.01), "{r:?}");
}
