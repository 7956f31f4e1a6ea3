//! Client-side pacing: one governor rate limiter (requests per second with a burst) and one
//! cap on requests in flight, shared by every stream so their sum stays under Understory's
//! limits whatever runs concurrently.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Pacer {
    rate: DefaultDirectRateLimiter,
    in_flight: Arc<Semaphore>,
}

impl Pacer {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32, max_concurrent: usize) -> Self {
        Self {
            rate: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            in_flight: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// Waits for a place in flight, then for the rate limiter; hold the permit until the
    /// response body has been read.
    pub async fn admit(&self) -> OwnedSemaphorePermit {
        let permit = Arc::clone(&self.in_flight)
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the semaphore is never closed"));
        self.rate.until_ready().await;
        permit
    }
}
