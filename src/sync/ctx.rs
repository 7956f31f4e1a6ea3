//! What a run's stream tasks share, and the way they call the store off the async threads.

use std::sync::Arc;

use super::error::Error;
use super::report::Progress;
use tokio::sync::Notify;

use crate::api::{ApiClient, Stats};
use crate::config::Config;
use crate::shutdown::Stop;
use crate::store::{self, Store};
use crate::streams::Stream;

/// What every stream task shares.
pub(super) struct Ctx {
    pub(crate) api: ApiClient,
    pub(crate) store: Arc<Store>,
    /// Every commit goes through it (see `store::Writer`).
    pub(crate) writer: store::Writer,
    pub(crate) config: Config,
    pub(crate) stop: Stop,
    pub(crate) progress: Arc<Progress>,
    /// The bytes read from the API and not yet written, counted against
    /// `sync.max_in_flight_bytes` (see `memory`).
    pub(crate) budget: crate::memory::Budget,
    /// Each parent stream's enabled per-parent streams, worked out once per run.
    pub(crate) children: std::collections::HashMap<&'static str, Vec<&'static Stream>>,
    /// The start of the last successful listing, when a webhook receiver has been up since
    /// before it: this listing then counts the changes a delivery should have brought
    /// (`store::Commit::watch_since`).
    pub(crate) webhook_since: Option<crate::time::Timestamp>,
}

impl Ctx {
    /// The enabled per-parent streams of `parent`: fetched by its fan-out for each new or
    /// changed item. With none, its pages are written directly; with some, they are staged.
    pub(super) fn children(&self, parent: &'static Stream) -> &[&'static Stream] {
        self.children.get(parent.name).map_or(&[], Vec::as_slice)
    }

    /// What a listed page of `stream` counts a webhook's misses from (`Commit::watch_since`):
    /// nothing for a stream without events, or when no receiver was up at the last listing.
    pub(super) fn watch_since(&self, stream: &'static Stream) -> Option<String> {
        let since = self.webhook_since.filter(|_| stream.webhook.is_some())?;
        Some(crate::time::iso(
            since - chrono::Duration::seconds(WEBHOOK_SLACK_SECS),
        ))
    }
}

/// A delivery that arrived this long before the last listing started still counts as one for a
/// change the listing did not see yet: the listing's pages take time, and an item can change
/// (and be delivered) after its page was read.
const WEBHOOK_SLACK_SECS: i64 = 60;

/// One list stream's part of a run: what its walk, its quarantine retries and its removal
/// checks share. Its report, the one thing they change, is passed beside it.
#[derive(Clone, Copy)]
pub(super) struct StreamRun<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) stream: &'static Stream,
    /// The stream's request counters.
    pub(crate) stats: &'a Stats,
    /// Told when a page has landed: the fan-out looks for staged parents then.
    pub(crate) wake: &'a Notify,
}

/// Runs a store call on a blocking thread: SQLite's calls block, and the walk, the fan-out and
/// the progress ticker share the async threads.
pub(super) async fn blocking<T: Send + 'static>(
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
