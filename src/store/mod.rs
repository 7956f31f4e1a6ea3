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
pub(crate) mod checkpoint;
pub(crate) mod commit;
mod database;
pub(crate) mod deferred;
mod error;
pub(crate) mod inbox;
pub(crate) mod open;
mod ours;
mod pace_state;
mod quarantine;
mod read_only;
mod runs;
pub(crate) mod schema;
mod snapshot;
mod staging;
mod statements;
pub(crate) mod status;
pub(crate) mod upsert;
mod writer;

pub(crate) use bind::{Record, Ts};
pub(crate) use checkpoint::Checkpoint;
pub(crate) use commit::{Children, Commit, Committed, Prune, Quarantined, Removals, Staged};
pub use database::Store;
pub use error::Error;
pub use inbox::WebhookHealth;
pub(crate) use inbox::{Delivered, Outcome, Received, Waiting};
pub(crate) use quarantine::counts_misses;
pub(crate) use runs::Params;
pub use runs::fail_running_run;
pub use status::{PaceRow, RunRow, Status, StreamState, status};
pub(crate) use upsert::Row;
pub(crate) use writer::{Pending, Writer};
