//! The pace against a budget it is not told, on each window shape the docs leave open (a fixed
//! 1-s window, a sliding 10-s window, a token bucket of 20 s of capacity, each at 40 requests/s):
//! the real binary against the sandbox, SIGKILLed after its first run, every figure read from
//! the sandbox's own request log. `benches/pace.rs` measures the same trials at full length.

#[path = "../../benches/common/budget_trial.rs"]
#[allow(dead_code)]
mod trial;

use std::time::Duration;

use trial::Budget;
use understory_sandbox::config::WindowShape;

use crate::cli::BIN;

/// The job waits this long after a 429 here, a third of the docs' minute: still longer than each
/// window and than the bucket's refill (20 s), so a pause empties the window or refills the
/// bucket as a minute would. With the minute, the first load's share is the benchmark's
/// (`benches/pace.rs`), under the goal on two of the shapes (see docs/design.md).
const WAIT_SECS: u64 = 21;

/// The three shapes side by side (five and a half minutes): the first run learns the budget with
/// at most two 429s (three for the bucket: both shapes fit the first two shots, and it takes two
/// steady shots to tell a bucket from a window), uses 90 % of it from 90 s on (with the shorter
/// wait, learning is over by then), and the run after the kill uses 90 % of it from its start,
/// with no 429.
///
/// It measures a real binary against a real clock for five and a half minutes, so it runs alone,
/// by hand: `cargo test --test it budget -- --ignored`. It is not in CI, because it still fails
/// now and then on the fixed window: the first load takes a second 429 soon after its first
/// pause and then settles near 71 % of the budget, and so does the run after the kill (the
/// README's "Not done yet").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "five and a half minutes of real time that needs the machine to itself: cargo test --test it budget -- --ignored"]
async fn the_budget_is_found_and_kept_on_every_window_shape() {
    let all = futures::future::join_all(Budget::three().into_iter().map(|b| {
        trial::real(
            BIN,
            b,
            Duration::from_secs(180),
            Duration::from_secs(150),
            WAIT_SECS,
        )
    }))
    .await;
    for f in &all {
        let name = f.budget.name();
        // Pauses, not answers: with requests in flight a pause's 429 may find another one sent.
        let most = if f.budget.shape == WindowShape::TokenBucket {
            3
        } else {
            2
        };
        assert!(f.first_bursts >= 1 && f.first_bursts <= most, "{name}: {f:?}");
        assert!(f.first_429s <= 2 * f.first_bursts, "{name}: {f:?}");
        assert!(f.share_after_90s >= 0.9, "{name}: {f:?}");
        assert_eq!(f.next_429s, 0, "{name}: {f:?}");
        assert!(f.next_share >= 0.9, "{name}: {f:?}");
    }
}
