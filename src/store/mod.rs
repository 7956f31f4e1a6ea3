//! The SQLite file, in rooms named after what they keep: `open` (the only place that opens
//! it to write, with its pragmas and migrations), `read_only` (the one way to read it without
//! writing a byte), `commit` (a page's rows together with the stream's checkpoint, in one
//! transaction) and `upsert` (one row), `staging`, `quarantine`, `deferred` (indexes set aside
//! for a first load), `runs`, `pace_state`, `status`, `snapshot`, `ours` (whether a file is
//! this job's), `schema` (what this version creates), and below them `checkpoint`, `bind`,
//! `statements` and `writer`.
//!
//! Terms: a *row* is one item as typed columns plus its `raw_json`; a *checkpoint* is the
//! stream's `sync_state` row (see `checkpoint`). Rows whose content did not change are not
//! written at all, so an unchanged run leaves the data tables byte for byte as they were.

mod bind;
pub mod checkpoint;
mod commit;
mod database;
mod deferred;
mod error;
mod inbox;
mod open;
mod ours;
mod pace_state;
mod quarantine;
mod read_only;
mod runs;
pub mod schema;
mod snapshot;
mod staging;
mod statements;
mod status;
mod upsert;
mod writer;

pub use bind::{Record, Ts};
pub use checkpoint::Checkpoint;
pub use commit::{Children, Commit, Committed, Prune, Quarantined, Removals, Staged};
pub use database::Store;
pub use deferred::Restored;
pub use error::Error;
pub use inbox::{Delivered, Outcome, Received, Waiting, WebhookHealth};
pub use open::open;
pub use quarantine::counts_misses;
pub use read_only::read_only;
pub use runs::{Params, fail_running_run};
pub use status::{RunRow, Status, StreamState, status};
pub use upsert::Row;
pub use writer::{Pending, Writer};
