//! Faults on demand: server errors, resets, slow answers, truncated and malformed bodies.
//!
//! Each `/v1` request draws from the seed and its sequence number, so a sequential client sees
//! the same faults on every run. Tests can also queue exact faults for the next requests.

use crate::poison::Unpoisoned as _;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::config::FaultConfig;
use super::world::Rng;

/// One injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this 5xx status and an error body.
    Status(u16),
    /// Close the connection without answering.
    Reset,
    /// Answer normally after a delay.
    Slow(Duration),
    /// Send half of the body, then break the connection.
    Truncated,
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Answer 429 as if over the rate limit, with the configured `Retry-After` if any.
    RateLimited,
}

pub struct Faults {
    seed: u64,
    seq: AtomicU64,
    /// `/v1` requests counted for `rate_limited_every`.
    counted: AtomicU64,
    config: Mutex<FaultConfig>,
    /// Decisions queued by tests, taken before any random draw; `None` lets a request through.
    queued: Mutex<VecDeque<Option<Fault>>>,
    /// Decisions queued for the token endpoint, which otherwise never fails on its own.
    token: Mutex<VecDeque<Fault>>,
}

impl Faults {
    pub fn new(seed: u64, config: FaultConfig) -> Self {
        Self {
            seed,
            seq: AtomicU64::new(0),
            counted: AtomicU64::new(0),
            config: Mutex::new(config),
            queued: Mutex::default(),
            token: Mutex::default(),
        }
    }

    pub fn set(&self, config: FaultConfig) {
        *self.config.locked() = config;
    }

    /// Makes the next `count` `/v1` requests fail with `fault`, before any random draw.
    pub fn inject(&self, fault: Fault, count: usize) {
        self.inject_after(0, fault, count);
    }

    /// Lets `skip` requests through, then fails the next `count` with `fault`.
    pub fn inject_after(&self, skip: usize, fault: Fault, count: usize) {
        let mut q = self.queued.locked();
        q.extend(std::iter::repeat_n(None, skip));
        q.extend(std::iter::repeat_n(Some(fault), count));
    }

    /// Makes the next `count` token requests fail with `fault`.
    pub fn inject_token(&self, fault: Fault, count: usize) {
        let mut q = self.token.locked();
        q.extend(std::iter::repeat_n(fault, count));
    }

    /// The fault for the next token request, if one was queued.
    pub fn draw_token(&self) -> Option<Fault> {
        self.token.locked().pop_front()
    }

    /// The fault for the next `/v1` request, if any.
    pub fn draw(&self) -> Option<Fault> {
        if let Some(decided) = self.queued.locked().pop_front() {
            return decided;
        }
        let cfg = self.config.locked().clone();
        if cfg.rate_limited_every > 0 {
            let n = self.counted.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(u64::from(cfg.rate_limited_every)) {
                return Some(Fault::RateLimited);
            }
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut x = Rng::new(&[self.seed, 0x0066_6175_6c74, seq]).unit();
        let table = [
            (cfg.status_500, Fault::Status(500)),
            (cfg.status_502, Fault::Status(502)),
            (cfg.status_503, Fault::Status(503)),
            (cfg.reset, Fault::Reset),
            (cfg.slow, Fault::Slow(Duration::from_millis(cfg.slow_ms))),
            (cfg.truncated, Fault::Truncated),
            (cfg.malformed, Fault::Malformed),
        ];
        for (share, fault) in table {
            if x < share {
                return Some(fault);
            }
            x -= share;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_near_their_share() {
        let cfg = FaultConfig {
            status_503: 0.1,
            reset: 0.05,
            ..FaultConfig::default()
        };
        let a = Faults::new(3, cfg.clone());
        let b = Faults::new(3, cfg);
        let da: Vec<_> = (0..2000).map(|_| a.draw()).collect();
        let db: Vec<_> = (0..2000).map(|_| b.draw()).collect();
        assert_eq!(da, db);
        let n503 = da.iter().filter(|f| **f == Some(Fault::Status(503))).count();
        assert!((150..250).contains(&n503), "{n503}");
        let resets = da.iter().filter(|f| **f == Some(Fault::Reset)).count();
        assert!((60..140).contains(&resets), "{resets}");
    }

    #[test]
    fn every_other_request_can_be_refused() {
        let f = Faults::new(
            1,
            FaultConfig {
                rate_limited_every: 2,
                ..FaultConfig::default()
            },
        );
        let draws: Vec<_> = (0..6).map(|_| f.draw()).collect();
        let refused = Some(Fault::RateLimited);
        assert_eq!(draws, [None, refused, None, refused, None, refused]);
    }

    #[test]
    fn queued_faults_come_first() {
        let f = Faults::new(1, FaultConfig::default());
        f.inject(Fault::Malformed, 2);
        assert_eq!(f.draw(), Some(Fault::Malformed));
        assert_eq!(f.draw(), Some(Fault::Malformed));
        assert_eq!(f.draw(), None);
    }
}
