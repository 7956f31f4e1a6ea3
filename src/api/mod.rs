//! Talking to the Understory API: its types, the HTTP client with pacing and retries.
//!
//! Retry *policy* (`retry::classify`) is a pure function of the error; the *mechanics*
//! (backoff with jitter, the per-run budget) live in `client`; pacing and waiting out 429s are
//! `crate::pace`'s.

pub mod client;
mod error;
pub mod paging;
pub mod retry;
pub mod types;

pub use crate::http::describe;
pub use client::{ApiClient, Stats, pace_settings};
pub use error::Error;
pub use paging::{ById, Followed, ListQuery, Order, Tries};
