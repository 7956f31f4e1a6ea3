//! understory-sync: keeps a SQLite file equal to an Understory account, run after run.
//!
//! Data flow: `config` → `auth` (an access token from an internal key's `client_credentials`,
//! or a third-party connection's rotating refresh token) → `api` (retried HTTP, paced by `pace`,
//! one adaptive controller for every request) → `streams` (one per resource: how to page it,
//! what a row is) → `sync` (page by page, rows and checkpoint committed together) → `store`
//! (SQLite, migrations, upserts). In `run` mode, `webhooks` receives Understory's events into
//! the store's inbox and `sync::apply_webhooks` stores the items they name through the same
//! path. The stand-in Understory that the tests, the demo and integrators use is a crate of its
//! own, `understory-sandbox` (`crates/understory-sandbox`), which this library does not use.
//!
//! The public surface is what the binary (`src/main.rs`, `src/cli/`) uses and nothing more: a
//! module or item is `pub` because the binary names it, or because a public item's signature
//! holds it; everything else is `pub(crate)` or private. The integration tests and benchmarks
//! reach further through `test_support`, which exists only with the `test-support` feature
//! (on for `cargo test` and `cargo bench`) and is not a supported API.
#![forbid(unsafe_code)]
// `pub` means reachable, from the binary's paths or, for the tests, from `test_support`; and a
// type a public signature holds is public at its own module's path. The lints run where
// `test_support` is compiled (every test and bench build); without it, the items only tests
// reach would be reported.
#![cfg_attr(feature = "test-support", deny(unreachable_pub, unnameable_types))]

pub mod access;
pub mod api;
pub mod auth;
pub mod config;
pub mod counts;
pub mod datasette;
mod dictionary;
pub mod files;
pub mod http;
pub mod lock;
mod memory;
mod mend;
pub mod metrics;
pub mod owner;
pub mod pace;
pub mod poison;
pub mod schedule;
pub mod shutdown;
pub mod store;
pub mod streams;
pub mod sync;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod time;
pub mod webhooks;
