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
#![forbid(unsafe_code)]

pub mod access;
pub mod api;
pub mod auth;
pub mod config;
pub mod counts;
pub mod datasette;
pub mod dictionary;
pub mod files;
pub mod http;
pub mod lock;
pub mod memory;
pub mod mend;
pub mod metrics;
pub mod owner;
pub mod pace;
pub mod poison;
pub mod schedule;
pub mod shutdown;
pub mod store;
pub mod streams;
pub mod sync;
pub mod time;
pub mod webhooks;
