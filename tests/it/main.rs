//! The one integration-test binary (one link step on two cores). Every test talks HTTP to a
//! sandbox on 127.0.0.1 and writes real SQLite files in a temporary directory.

mod account;
mod agreement;
mod alerts;
mod analysts;
mod budget;
mod cli;
mod columns;
mod configs;
mod container;
mod datasette;
mod docs;
mod duckdb;
mod fan_out;
mod first_load;
mod help;
mod hostile;
mod install;
mod keeping_up;
mod operator;
mod ops;
mod pace;
mod promises;
mod read_only;
mod reliability;
mod removals;
mod sandbox;
mod sandbox_webhooks;
mod support;
mod sync;
mod third_party;
mod variants;
mod webhooks;
mod webhooks_run;
