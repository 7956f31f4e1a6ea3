//! understory-sync: keeps a SQLite file equal to an Understory account, run after run.
//!
//! Data flow: `config` → `auth` (client_credentials token) → `api` (retried HTTP, paced by
//! `pace`, one adaptive controller for every request)
//! → `streams` (one per resource: how to page it, what a row is) → `sync` (page by page, rows
//! and checkpoint committed together) → `store` (SQLite, migrations, upserts). `sandbox` is a
//! stand-in Understory for tests, the demo and integrators.
#![forbid(unsafe_code)]

pub mod access;
pub mod api;
pub mod auth;
pub mod config;
pub mod counts;
pub mod files;
pub mod http;
pub mod lock;
pub mod memory;
pub mod mend;
pub mod metrics;
pub mod owner;
pub mod pace;
pub mod sandbox;
pub mod schedule;
pub mod shutdown;
pub mod store;
pub mod streams;
pub mod sync;
pub mod time;
pub mod webhooks;
