//! Talking to the Understory API: its types, the HTTP client with pacing and retries.
//!
//! Retry *policy* (`retry::classify`) is a pure function of the error; the *mechanics*
//! (backoff with jitter, the per-run budget) live in `client`; pacing and waiting out 429s are
//! `crate::pace`'s.

pub(crate) mod client;
mod error;
pub(crate) mod paging;
pub(crate) mod retry;
pub mod types;

pub use client::{ApiClient, Stats, pace_settings};
pub use error::Error;
pub(crate) use paging::{ById, Followed, ListQuery, Order, Tries};
