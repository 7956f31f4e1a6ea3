//! The sync engine: walks each enabled stream page by page and commits every page's rows
//! together with the stream's checkpoint in one SQLite transaction.
//!
//! A *pass* is one walk of a stream's list (see `store::checkpoint::PassKind`):
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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::Utc;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::Notify;

use crate::api::types::Page;
use crate::api::{self, ApiClient, Stats};
use crate::auth;
use crate::config::Config;
use crate::counts::Counts;
use crate::shutdown::Stop;
use crate::store::{self, Commit, Quarantined, Removals, Store};
use crate::streams::{self, At, Item, Mode, Stream};
use fan_out::{FanOutReport, backfill, fan_out};
pub use report::{Progress, RunReport, RunStatus, StreamProgress, StreamReport};
use walk::{Next, Walk};

mod fan_out;
mod first_load;
mod in_flight;
mod pages;
mod progress;
mod removals;
mod report;
mod run;
mod stream;
mod walk;

use first_load::{defer_indexes_for_first_load, restore_indexes_unless_loading};
use pages::{commit_page, count, read_page, rows_or_staged, walk};
use removals::{confirm_removals, retry_quarantined};
pub use run::{run, run_with_progress};
use stream::run_stream;

/// Why a stream (or the run) failed, and so which exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    /// `cause` rather than `source`: the message already holds it, and a `source` would print
    /// it twice in the one-line error.
    #[error("{stream}: {cause}")]
    Api { stream: &'static str, cause: api::Error },
    #[error(
        "{stream}: the API sent an item this job cannot read ({detail}); nothing from that page was stored"
    )]
    Malformed { stream: &'static str, detail: String },
    /// The key was refused at the token endpoint.
    #[error("{0}")]
    Auth(auth::Error),
    /// The run's first token could not be fetched, retries included (a key the endpoint
    /// refuses is `Auth`).
    #[error("{0}")]
    Token(api::Error),
    /// A list walk was handed a cursor the pass had already followed (`walk::Looping`), or
    /// fresh cursors over items the pass's last pages already listed (`RecentPages`).
    #[error(
        "{stream}: the API is handing out pages this pass already read (a `next` cursor already followed, or fresh cursors over items already listed); stopped instead of asking for ever (nothing was stored twice; the next run starts the pass again)"
    )]
    Looping { stream: &'static str },
    /// The HTTP client could not be built (its TLS roots, or the configured proxy).
    #[error("cannot start the sync: {0}")]
    Client(String),
    /// A task of the run panicked or was cancelled: a bug, said as such.
    #[error("{what} failed: {detail}")]
    Task { what: &'static str, detail: String },
    /// A parent kept in `staging` is no longer the JSON it was stored as.
    #[error(
        "{stream}: a parent kept in `staging` is not JSON any more ({detail}); the database was changed by something else"
    )]
    Staged { stream: &'static str, detail: String },
    /// The run is stopping (SIGTERM/SIGINT): `stream` (or, before any stream started, the
    /// run) asks for nothing more.
    #[error("{}stopped; the next run resumes from the checkpoints", stream.map(|s| format!("{s}: ")).unwrap_or_default())]
    Stopped { stream: Option<&'static str> },
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
}

/// The coarse kind of a failure, for exit codes and `sync_runs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    Auth,
    Api,
    Store,
    Stopped,
    Internal,
    LockBusy,
}

impl Error {
    pub fn failure(&self) -> Failure {
        match self {
            Self::Store(_) => Failure::Store,
            Self::Auth(_) => Failure::Auth,
            Self::Api { cause, .. } | Self::Token(cause) => match cause.root() {
                api::Error::Auth(a) if !a.is_transient() => Failure::Auth,
                api::Error::Unauthorized { .. } => Failure::Auth,
                api::Error::Stopped { .. } => Failure::Stopped,
                _ => Failure::Api,
            },
            Self::Stopped { .. } => Failure::Stopped,
            Self::Malformed { .. } | Self::Looping { .. } => Failure::Api,
            Self::Client(_) | Self::Task { .. } => Failure::Internal,
            Self::Staged { .. } => Failure::Store,
            Self::Lock(crate::lock::Error::Busy { .. }) => Failure::LockBusy,
            Self::Lock(_) => Failure::Store,
        }
    }
}

/// What every stream task shares.
struct Ctx {
    api: ApiClient,
    store: Arc<Store>,
    /// Every commit goes through it (see `store::Writer`).
    writer: store::Writer,
    config: Config,
    stop: Stop,
    progress: Arc<Progress>,
    /// Each parent stream's enabled per-parent streams, worked out once per run.
    children: std::collections::HashMap<&'static str, Vec<&'static Stream>>,
}

impl Ctx {
    /// The enabled per-parent streams of `parent`: fetched by its fan-out for each new or
    /// changed item. With none, its pages are written directly; with some, they are staged.
    fn children(&self, parent: &'static Stream) -> &[&'static Stream] {
        self.children.get(parent.name).map_or(&[], Vec::as_slice)
    }
}

/// A refresh token nobody rotated for 25 days dies at 30: say so while there is time to act.
fn warn_if_aging(api: &ApiClient) {
    let now = Utc::now();
    if let Some(info) = api.tokens().refresh_token_info()
        && info.is_aging(now)
    {
        tracing::warn!(
            issued_at = %info.issued_at,
            age_days = info.age_days(now),
            expires_at = %info.expires_at(),
            "the stored refresh token was issued more than 25 days ago and the server has not rotated it; it stops working at expires_at: re-run `understory-sync connect` before then"
        );
    }
}

/// The enabled per-parent streams of each enabled parent.
fn children_by_parent(
    streams: &[&'static Stream],
) -> std::collections::HashMap<&'static str, Vec<&'static Stream>> {
    let mut by_parent: std::collections::HashMap<&'static str, Vec<&'static Stream>> =
        std::collections::HashMap::new();
    for &s in streams {
        if let Some(parent) = s.parent() {
            by_parent.entry(parent.name).or_default().push(s);
        }
    }
    by_parent
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, store::Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task {
            what: "a database task",
            detail: e.to_string(),
        })?
        .map_err(Error::Store)
}
