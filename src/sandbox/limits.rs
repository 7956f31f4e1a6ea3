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
        if u.count >= cfg.requests_per_window {
            return Err(Over {
                retry_after: cfg.retry_after_secs,
                why: "request rate limit exceeded",
            });
        }
        if u.in_flight >= cfg.max_concurrent {
            return Err(Over {
                retry_after: cfg.retry_after_secs,
                why: "too many concurrent requests",
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
