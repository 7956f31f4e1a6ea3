//! The design notes' bounds on 429s, checked with the default config's `burst` of 10 (the tests
//! in `tests.rs` all use a burst of 1) against a simulated API with a fixed budget per second.
//! Each failed before the burst credit, the kept probe schedule and a failed probe's ceiling
//! were fixed.

use super::simulated::{Budget, run, settings as simulated};
use super::*;

fn settings(burst: u32) -> Settings {
    simulated(burst, 600)
}

/// Settles for half an hour at 40/s, then the budget becomes `then`; returns the 429s and
/// clean answers of the next two hours.
async fn two_hours(burst: u32, then: u32) -> (u32, u32) {
    let pace = Pace::new(settings(burst), None);
    let mut api = Budget::new(40);
    run(&pace, &mut api, 1_800).await;
    api.per_second = then;
    run(&pace, &mut api, 7_200).await
}

/// docs/design.md: at a steady budget a failed probe costs one 429 and its pause every half
/// hour at most. Before burst credit was withheld after a pause, this drew 8 429s in two hours
/// with a burst of 1 and 12 with the default burst of 10 (each probe's 429 followed by one or
/// two more, a minute apart).
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

/// docs/design.md: a budget that really dropped is not drawn again after every clean spell.
/// Before the probe's schedule was kept and its ceiling taken from the last clean rate, the
/// default burst drew 28 429s in the two hours after the budget halved (a probe every ~35 min,
/// each followed by five more cuts a minute apart), and used 59 % of the budget.
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
        let mut api = Budget::new(40);
        per_run.push(run(&pace, &mut api, 300).await.0);
        learned = Some(pace.learned());
    }
    // The first run finds the budget; after it, a probe every half hour at most: at most
    // one 429 in the seven runs after it (35 minutes).
    let later: u32 = per_run[1..].iter().sum();
    assert!(later <= 2, "429s per five-minute run: {per_run:?}");
}
