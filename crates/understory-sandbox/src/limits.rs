//! The sandbox's server-side rate limit: a request budget per window and a concurrency cap per
//! client, the two limits Understory's docs say exist without giving numbers or the window's
//! shape (`docs/understory-api.md` §4). The window is a fixed one, a sliding one or a token bucket (`WindowShape`).
//!
//! Time is tokio's: a benchmark or test on a paused clock meets the same budget in that clock.

use crate::poison::Unpoisoned as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::config::{RateLimitConfig, WindowShape};

#[derive(Default)]
struct Usage {
    /// Fixed window: when the current one began, and what it admitted.
    window_start: Option<Instant>,
    count: u32,
    /// Sliding window: when each request of the last window was admitted.
    admitted: std::collections::VecDeque<Instant>,
    /// Token bucket: tokens left, as of `refilled`.
    tokens: Option<f64>,
    refilled: Option<Instant>,
    in_flight: u32,
    /// Refused until then, after going over the budget (`penalty_ms`).
    penalised_until: Option<Instant>,
}

pub struct RateLimiter {
    config: Mutex<RateLimitConfig>,
    usage: Arc<Mutex<HashMap<String, Usage>>>,
}

/// Holds one of the client's concurrent-request places until dropped.
pub struct Slot {
    client: String,
    usage: Arc<Mutex<HashMap<String, Usage>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut usage = self.usage.locked();
        if let Some(u) = usage.get_mut(&self.client) {
            u.in_flight = u.in_flight.saturating_sub(1);
        }
    }
}

/// Refused: the `Retry-After` to send, if the sandbox is configured to send one.
pub struct Over {
    pub retry_after: Option<u64>,
    pub why: &'static str,
}

impl Usage {
    /// Whether the window (of `cfg.shape`) has room for one more request at `now`.
    fn has_room(&mut self, cfg: &RateLimitConfig, window: Duration, now: Instant) -> bool {
        let budget = cfg.requests_per_window;
        match cfg.shape {
            WindowShape::Fixed => {
                if self.window_start.is_none_or(|s| now.duration_since(s) >= window) {
                    self.window_start = Some(now);
                    self.count = 0;
                }
                self.count < budget
            }
            WindowShape::Sliding => {
                while self
                    .admitted
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= window)
                {
                    self.admitted.pop_front();
                }
                self.admitted.len() < budget as usize
            }
            WindowShape::TokenBucket => {
                let capacity = f64::from(budget);
                let rate = capacity / window.as_secs_f64();
                let since = self.refilled.map_or(0.0, |r| now.duration_since(r).as_secs_f64());
                let tokens = (self.tokens.unwrap_or(capacity) + since * rate).min(capacity);
                self.tokens = Some(tokens);
                self.refilled = Some(now);
                tokens >= 1.0
            }
        }
    }

    /// Counts one admitted request.
    fn take(&mut self, shape: WindowShape, now: Instant) {
        match shape {
            WindowShape::Fixed => self.count += 1,
            WindowShape::Sliding => self.admitted.push_back(now),
            WindowShape::TokenBucket => self.tokens = self.tokens.map(|t| t - 1.0),
        }
    }
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config: Mutex::new(config),
            usage: Arc::default(),
        }
    }

    pub fn set(&self, config: RateLimitConfig) {
        *self.config.locked() = config;
    }

    pub fn admit(&self, client: &str) -> Result<Slot, Over> {
        let cfg = self.config.locked().clone();
        let mut usage = self.usage.locked();
        let u = usage.entry(client.to_owned()).or_default();
        let now = Instant::now();
        let window = Duration::from_millis(cfg.window_ms.max(1));
        if u.penalised_until.is_some_and(|p| now < p) {
            return Err(Over {
                retry_after: cfg.retry_after_secs,
                why: "rate limit penalty: back off before retrying",
            });
        }
        let over = if !u.has_room(&cfg, window, now) {
            Some("request rate limit exceeded")
        } else if u.in_flight >= cfg.max_concurrent {
            Some("too many concurrent requests")
        } else {
            None
        };
        if let Some(why) = over {
            if cfg.penalty_ms > 0 {
                u.penalised_until = Some(now + Duration::from_millis(cfg.penalty_ms));
            }
            return Err(Over {
                retry_after: cfg.retry_after_secs,
                why,
            });
        }
        u.take(cfg.shape, now);
        u.in_flight += 1;
        Ok(Slot {
            client: client.to_owned(),
            usage: Arc::clone(&self.usage),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(requests: u32, concurrent: u32) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            requests_per_window: requests,
            window_ms: 60_000,
            shape: WindowShape::Fixed,
            max_concurrent: concurrent,
            retry_after_secs: Some(3),
            penalty_ms: 0,
        })
    }

    #[test]
    fn concurrent_requests_beyond_the_cap_are_refused_until_one_finishes() {
        let l = limiter(100, 2);
        let a = l.admit("c").ok().unwrap();
        let _b = l.admit("c").ok().unwrap();
        let over = l.admit("c").err().unwrap();
        assert_eq!(
            (over.why, over.retry_after),
            ("too many concurrent requests", Some(3))
        );
        assert!(l.admit("other-client").is_ok(), "budgets are per client");
        drop(a);
        assert!(l.admit("c").is_ok());
    }

    #[test]
    fn going_over_earns_a_penalty_during_which_everything_is_refused() {
        let l = RateLimiter::new(RateLimitConfig {
            requests_per_window: 1,
            window_ms: 1,
            shape: WindowShape::Fixed,
            max_concurrent: 10,
            retry_after_secs: None,
            penalty_ms: 60_000,
        });
        assert!(l.admit("c").is_ok());
        assert!(l.admit("c").is_err(), "over the window");
        std::thread::sleep(Duration::from_millis(5));
        let refused = l.admit("c").err().unwrap();
        assert!(
            refused.why.contains("penalty"),
            "a new window, but still penalised"
        );
    }

    #[test]
    fn the_window_count_refuses_the_request_over_budget() {
        let l = limiter(2, 10);
        assert!(l.admit("c").is_ok() && l.admit("c").is_ok());
        assert_eq!(l.admit("c").err().unwrap().why, "request rate limit exceeded");
    }

    fn shaped(shape: WindowShape, requests: u32, window_ms: u64) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            requests_per_window: requests,
            window_ms,
            shape,
            max_concurrent: 1_000,
            retry_after_secs: None,
            penalty_ms: 0,
        })
    }

    /// Admits back-to-back requests for `secs`, `per_sec` a second, evenly; returns how many
    /// were admitted.
    fn drive(l: &RateLimiter, per_sec: u32, millis: u64) -> u32 {
        let start = Instant::now();
        let gap = Duration::from_secs(1) / per_sec;
        let mut admitted = 0;
        let mut next = start;
        while start.elapsed() < Duration::from_millis(millis) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep(next - now);
            }
            next += gap;
            if l.admit("c").is_ok() {
                admitted += 1;
            }
        }
        admitted
    }

    #[test]
    fn a_sliding_window_counts_the_last_window_whenever_it_began() {
        let l = shaped(WindowShape::Sliding, 10, 400);
        for _ in 0..10 {
            assert!(l.admit("c").is_ok());
        }
        assert!(l.admit("c").is_err(), "the window is full");
        std::thread::sleep(Duration::from_millis(200));
        assert!(l.admit("c").is_err(), "half a window later, still the same ten");
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.admit("c").is_ok(), "the first ones slid out");
    }

    #[test]
    fn a_token_bucket_lets_a_burst_of_its_capacity_then_its_rate() {
        // 20 tokens, refilled at 20 per 400 ms (50/s).
        let l = shaped(WindowShape::TokenBucket, 20, 400);
        for _ in 0..20 {
            assert!(l.admit("c").is_ok(), "the burst");
        }
        assert!(l.admit("c").is_err(), "empty");
        std::thread::sleep(Duration::from_millis(50));
        assert!(l.admit("c").is_ok(), "2.5 tokens back after 50 ms");
        // Sent at 200/s for 400 ms after the burst, about 50/s get through.
        let admitted = drive(&l, 200, 400);
        assert!((15..=30).contains(&admitted), "{admitted}");
    }

    #[test]
    fn each_shape_admits_its_budget_over_a_long_spell() {
        for shape in [WindowShape::Fixed, WindowShape::Sliding, WindowShape::TokenBucket] {
            // 10 per 100 ms = 100/s, offered at 400/s for a second: about 100 pass (a token
            // bucket's full capacity on top).
            let l = shaped(shape, 10, 100);
            let admitted = drive(&l, 400, 1_000);
            assert!((80..=125).contains(&admitted), "{shape:?}: {admitted}");
        }
    }
}
