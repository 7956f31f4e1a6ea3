//! The sync engine: walks each enabled stream page by page and commits every page's rows
//! together with the stream's checkpoint in one SQLite transaction.
//!
//! A *pass* is one walk of a stream's list (see `walk::PassKind`):
//! - *bootstrap* (first run of bookings and orders): `sort=+created_at`; before it starts, the
//!   newest `updated_at` is noted as the pass's *candidate* high-water mark. A pass whose cursor
//!   went stale resumes with `from=` the newest `created_at` it committed. An incremental pass
//!   follows at once, for rows updated behind the crawl's position while it ran.
//! - *incremental* (later runs): `sort=-updated_at`, stopping once items are older than the
//!   high-water mark minus `sync.overlap_secs`; the candidate is the newest item seen first.
//! - *scan* (consents, events, experiences): the whole list, its keys remembered in `scan_seen`.
//!   A complete scan's *removal candidates* (live rows it did not list) are confirmed before
//!   `removed_at` is set: `GET …/{id}` answers 404, or, for legacy consents without an id, two
//!   consecutive complete scans missed them. A scan resumed after a crash is followed by a whole
//!   one, which does the confirming.
//!
//! A stream with enabled *per-parent* streams (orders: line items, transactions, refunds;
//! bookings: tickets, answers; experiences: ticket variants, information requests) has its
//! new or changed items *staged* (committed to `staging` with the checkpoint) so the walk uses
//! each short-lived `next` cursor at once; a *fan-out* task beside the walk (`fan_out`) fetches
//! each staged parent's lists and commits the parent with them. Fan-out requests wait behind
//! list requests in the shared pace. The walk's decisions live in `walk`, its reports in
//! `report`.
//!
//! An item that cannot be read (no id, no walk timestamp) goes to `quarantine` and the rest of
//! its page is stored; quarantined items are tried again every run.
//!
//! The high-water mark advances only in the transaction of a pass's last page. The cursor is
//! checkpointed after every page but used only to resume a crashed pass while it is younger than
//! `sync.cursor_ttl_secs`; a stale or refused cursor restarts the pass — a warning, not an error,
//! and never a loss, because every row is upserted by key and unchanged rows are not rewritten.

mod apply;
mod commit;
mod ctx;
pub(crate) mod error;
mod fan_out;
mod first_load;
mod in_flight;
mod pages;
mod progress;
mod removals;
mod repeats;
pub(crate) mod report;
mod run;
mod stream;
mod walk;

pub use apply::apply_webhooks;
pub use error::{Error, Failure};
pub use report::{Progress, RunReport, RunStatus, StreamReport};
pub use run::{Shared, run_sharing};
