//! The sandbox's server-side rate limit: a fixed window count and a concurrency cap per client,
//! the two limits Understory's docs say exist without giving numbers (§4).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::RateLimitConfig;

#[derive(Default)]
struct Usage {
    window_start: Option<Instant>,
    count: u32,
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
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
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

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config: Mutex::new(config),
            usage: Arc::default(),
        }
    }

    pub fn set(&self, config: RateLimitConfig) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config;
    }

    pub fn admit(&self, client: &str) -> Result<Slot, Over> {
        let cfg = self.config.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let u = usage.entry(client.to_owned()).or_default();
        let now = Instant::now();
        let window = Duration::from_millis(cfg.window_ms.max(1));
        if u.window_start.is_none_or(|s| now.duration_since(s) >= window) {
            u.window_start = Some(now);
            u.count = 0;
        }
        if u.penalised_until.is_some_and(|p| now < p) {
            return Err(Over {
                retry_after: cfg.retry_after_secs,
                why: "rate limit penalty: back off before retrying",
            });
        }
        let over = if u.count >= cfg.requests_per_window {
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
        u.count += 1;
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
}
