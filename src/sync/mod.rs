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
use crate::shutdown::Stop;
use crate::store::{self, Commit, Counts, Quarantined, Removals, Store};
use crate::streams::{self, At, Item, Mode, Stream};
use fan_out::{FanOutReport, backfill, fan_out};
pub use report::{Progress, RunReport, RunStatus, StreamProgress, StreamReport};
use walk::{Next, Walk};

mod fan_out;
mod progress;
mod report;
mod walk;

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
    #[error("{0}")]
    Auth(auth::Error),
    /// The API handed back a cursor the pass had already followed (`walk::Looping`), or fresh
    /// cursors over items the pass's last pages already listed (`RecentPages`).
    #[error(
        "{stream}: the API is handing out pages this pass already read (a `next` cursor already followed, or fresh cursors over items already listed); stopped instead of asking for ever (nothing was stored twice; the next run starts the pass again)"
    )]
    Looping { stream: &'static str },
    /// One parent's per-parent list ran past `fan_out::MAX_LIST_ITEMS`.
    #[error(
        "{stream}: the list of {parent} ran past {max} items; stopped instead of holding it all (nothing of it was stored)"
    )]
    ListTooLong {
        stream: &'static str,
        parent: String,
        max: usize,
    },
    #[error("cannot start the sync: {0}")]
    Setup(String),
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
            Self::Api { cause, .. } => match cause.root() {
                api::Error::Auth(a) if !a.is_transient() => Failure::Auth,
                api::Error::Unauthorized { .. } => Failure::Auth,
                api::Error::Stopped { .. } => Failure::Stopped,
                _ => Failure::Api,
            },
            Self::Malformed { .. } | Self::Looping { .. } | Self::ListTooLong { .. } => Failure::Api,
            Self::Setup(_) => Failure::Internal,
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

/// The enabled per-parent streams of each enabled parent.
/// Sets aside the secondary indexes of a stream's table before its first full load into an
/// empty table (`Store::defer_indexes`), and its key too when no per-parent stream of it runs
/// (their fan-out looks parents up by key); true if the stream has indexes set aside now, from
/// this run or from an interrupted earlier one. A failure only costs speed, so it is logged.
async fn defer_indexes_for_first_load(ctx: &Ctx, kind: &'static Stream) -> bool {
    let store = Arc::clone(&ctx.store);
    let name = kind.name;
    let mode = kind.mode;
    let keyless = ctx.children(kind).is_empty();
    let deferred = blocking(move || {
        let checkpoint = store.load_checkpoint(name)?;
        if walk::first_load(mode, &checkpoint) {
            store.defer_indexes(name, keyless, Utc::now())?;
        }
        store.deferred_indexes()
    })
    .await;
    match deferred {
        Ok(tables) => match tables.iter().find(|(t, _)| t == name) {
            Some((_, n)) => {
                tracing::info!(
                    indexes = n,
                    "first full load: indexes are built once it completes"
                );
                true
            }
            None => false,
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not set the indexes aside; loading with them");
            false
        }
    }
}

/// Rebuilds the indexes set aside once the first full load is complete (or the stream is past
/// it); while a bootstrap is still to be resumed they stay aside. A rebuild that fails fails the
/// stream (a full disk, say) and is tried again by the next run.
async fn restore_indexes_unless_loading(
    ctx: &Ctx,
    kind: &'static Stream,
    result: Result<(), Error>,
) -> Result<(), Error> {
    let store = Arc::clone(&ctx.store);
    let name = kind.name;
    let mode = kind.mode;
    let pending = {
        let store = Arc::clone(&store);
        blocking(move || {
            if walk::first_load(mode, &store.load_checkpoint(name)?) {
                return Ok(0);
            }
            let tables = store.deferred_indexes()?;
            Ok(tables.into_iter().find(|(t, _)| t == name).map_or(0, |(_, n)| n))
        })
        .await
    };
    let pending = match pending {
        Ok(0) => return result,
        Ok(n) => n,
        Err(e) => return result.and(Err(e)),
    };
    // Said before the build, which takes a while on a large table: an operator watching the
    // log, and the crash trials aiming a kill at the build, know it has begun.
    tracing::info!(
        indexes = pending,
        "first full load complete: building the indexes set aside"
    );
    let started = Instant::now();
    let restored = blocking(move || store.restore_indexes(name)).await;
    match restored {
        Ok(built) if built.indexes > 0 => {
            tracing::info!(
                indexes = built.indexes,
                ids_listed_twice = built.folded,
                duration_ms = started.elapsed().as_millis() as u64,
                "first full load complete: indexes built"
            );
            result
        }
        Ok(_) => result,
        Err(e) => result.and(Err(e)),
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
        .map_err(|e| Error::Setup(format!("a database task failed: {e}")))?
        .map_err(Error::Store)
}

/// Runs one sync of every enabled stream, concurrently, and records it in `sync_runs`.
pub async fn run(config: &Config, stop: Stop) -> Result<RunReport, Error> {
    run_with_progress(config, stop, Arc::default()).await
}

/// `run`, reporting each committed page to `progress` (the terminal display reads it).
pub async fn run_with_progress(
    config: &Config,
    stop: Stop,
    progress: Arc<Progress>,
) -> Result<RunReport, Error> {
    let started = Instant::now();
    let (stop, ceiling) = with_ceiling(stop, config.sync.max_run);
    // Whatever ends the run ends its ceiling's timer (in `run` mode the process lives on).
    let _ceiling = AbortOnDrop(ceiling);
    // Held until the run ends: one sync per database, and `start_run` may then safely mark
    // runs still "running" as abandoned.
    let _lock = crate::lock::acquire(&config.database)?;
    let path = config.database.clone();
    let store = Arc::new(blocking(move || Store::open(&path)).await?);
    let scopes = config.scopes();
    // Indexes a first load set aside for a stream this config no longer runs would otherwise
    // wait for a load that never completes; a key set aside for a table whose per-parent
    // streams are now enabled is needed before their fan-out looks parents up by it.
    let s = Arc::clone(&store);
    let enabled: Vec<&'static str> = config.streams.iter().map(|k| k.name).collect();
    let children = children_by_parent(&config.streams);
    let parents: Vec<&'static str> = children.keys().copied().collect();
    blocking(move || {
        for (table, _) in s.deferred_indexes()? {
            let table = table.as_str();
            if !enabled.contains(&table) || (parents.contains(&table) && s.key_deferred(table)?) {
                s.restore_indexes(table)?;
            }
        }
        Ok(())
    })
    .await?;
    let s = Arc::clone(&store);
    let learned = blocking(move || s.load_pace()).await?;
    let api = ApiClient::new(config, &scopes, stop.clone(), learned).map_err(Error::Setup)?;
    // A refused key or a dead token endpoint fails the run here, once, with one clear line,
    // before any stream starts (and retries it three times over).
    let token_stats = Stats::default();
    let authenticated = tokio::select! {
        r = api.authenticate(&token_stats) => r,
        // A stop while the token endpoint is slow is a stop (exit 7), not a failed key.
        () = stop.stopped() => Err(api::Error::Stopped { path: config.auth.token_url.path().to_owned() }),
    };
    if let Err(e) = authenticated {
        return Err(match e {
            api::Error::Auth(a) => Error::Auth(a),
            other => Error::Api {
                stream: "auth",
                cause: other,
            },
        });
    }
    warn_if_aging(&api);
    let s = Arc::clone(&store);
    let run_id = blocking(move || s.start_run(Utc::now())).await?;
    let ctx = Arc::new(Ctx {
        api,
        writer: store::Writer::start(Arc::clone(&store)),
        store: Arc::clone(&store),
        config: config.clone(),
        stop: stop.clone(),
        progress,
        children,
    });

    // Per-parent streams run inside their parent's fan-out, not as tasks of their own.
    let lists: Vec<&'static Stream> = config
        .streams
        .iter()
        .copied()
        .filter(|s| s.parent().is_none())
        .collect();
    ctx.progress.register(&config.streams);
    let ticker = tokio::spawn(progress::report(Arc::clone(&ctx), run_id));
    let mut tasks = tokio::task::JoinSet::new();
    for kind in lists.iter().copied() {
        let ctx = Arc::clone(&ctx);
        tasks.spawn(async move { run_stream(&ctx, kind).await });
    }
    let mut streams: Vec<StreamReport> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => streams.extend(r),
            Err(e) => {
                ticker.abort();
                return Err(Error::Setup(format!("a stream task failed: {e}")));
            }
        }
    }
    ticker.abort();
    let _ = ticker.await;
    // In config order, each per-parent stream with its own line after the parents.
    let order = |name: &str| config.streams.iter().position(|s| s.name == name);
    streams.sort_by_key(|r| order(r.stream));
    // A per-parent stream fails with its parent's fan-out, which holds the error.
    let failed = streams.iter().filter(|s| s.error.is_some()).count();
    let status = if stop.is_stopped() && failed > 0 {
        RunStatus::Interrupted
    } else if failed == 0 {
        RunStatus::Succeeded
    } else if failed == lists.len() {
        RunStatus::Failed
    } else {
        RunStatus::Partial
    };
    let pace = ctx.api.pace().report();
    let learned = ctx.api.pace().learned();
    let mut report = RunReport {
        run_id,
        status,
        streams,
        duration_ms: started.elapsed().as_millis() as u64,
        last_success: None,
        pace,
        quarantined: 0,
        refresh_token: ctx.api.tokens().refresh_token_info(),
        snapshot_error: None,
    };
    let total = report.total();
    let sum = |f: fn(&StreamReport) -> u64| report.streams.iter().map(f).sum::<u64>() as i64;
    let errors: Vec<String> = report.streams.iter().filter_map(|s| s.error.clone()).collect();
    let s = Arc::clone(&store);
    let quarantined = blocking(move || s.quarantine_count()).await?;
    report.quarantined = quarantined;
    use rusqlite::types::Value;
    let params: store::Params = vec![
        (":status", Value::Text(status.as_str().to_owned())),
        (":rows_inserted", Value::Integer(total.inserted as i64)),
        (":rows_updated", Value::Integer(total.updated as i64)),
        (":rows_unchanged", Value::Integer(total.unchanged as i64)),
        (":requests", Value::Integer(sum(|s| s.requests))),
        (":retries", Value::Integer(sum(|s| s.retries))),
        (":rate_limited", Value::Integer(pace.rate_limited as i64)),
        (":pace_rps", Value::Real(pace.rate)),
        (":peak_pace_rps", Value::Real(pace.peak_rate)),
        (":paused_ms", Value::Integer(pace.paused_ms as i64)),
        (":quarantined", Value::Integer(quarantined as i64)),
        (
            ":streams_json",
            Value::Text(serde_json::to_string(&report.streams).unwrap_or_default()),
        ),
        (
            ":error",
            if errors.is_empty() {
                Value::Null
            } else {
                Value::Text(errors.join("; "))
            },
        ),
    ];
    let s = Arc::clone(&store);
    report.last_success = blocking(move || {
        s.save_pace(&learned, Utc::now())?;
        s.finish_run(run_id, &params, Utc::now())?;
        s.last_success()
    })
    .await?
    .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
    .map(|t| t.to_utc());
    if let Some(snapshot) = config.snapshot.clone().filter(|_| status == RunStatus::Succeeded) {
        report.snapshot_error = publish_snapshot(Arc::clone(&store), snapshot).await;
    }
    close(ctx, store).await;
    Ok(report)
}

/// `stop`, or `max_run` after now, whichever comes first: past its ceiling a run stops as on
/// SIGTERM (the page in flight lands, the run is `interrupted`, the next one resumes).
fn with_ceiling(stop: Stop, max_run: std::time::Duration) -> (Stop, tokio::task::JoinHandle<()>) {
    let (trigger, run_stop) = crate::shutdown::channel();
    let timer = tokio::spawn(async move {
        tokio::select! {
            () = stop.stopped() => {}
            () = tokio::time::sleep(max_run) => tracing::warn!(
                max_run_secs = max_run.as_secs(),
                "the run reached sync.max_run_secs: finishing the page in flight, then stopping; the next run resumes"
            ),
        }
        trigger.stop();
    });
    (run_stop, timer)
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits for the writer thread, copies the WAL into the database (a passive checkpoint, which
/// blocks no reader) and closes the connection; for `run`, whose process lives on, that also
/// releases the file between syncs.
async fn close(ctx: Arc<Ctx>, store: Arc<Store>) {
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(ctx) = Arc::try_unwrap(ctx) {
            let Ctx { writer, .. } = ctx;
            writer.close();
        }
        if let Err(e) = store.checkpoint() {
            tracing::debug!(error = %e, "the end-of-run checkpoint did not complete; the next run's writes will");
        }
        drop(store);
    })
    .await;
}

/// Publishes the configured snapshot (still holding the lock, so no other run writes
/// meanwhile); `Some(why)` when it could not.
async fn publish_snapshot(store: Arc<Store>, snapshot: crate::config::Snapshot) -> Option<String> {
    let started = Instant::now();
    let path = snapshot.path.clone();
    match blocking(move || store.publish_snapshot(&snapshot.path, snapshot.mode)).await {
        Ok(()) => {
            tracing::info!(
                path = %path.display(),
                duration_ms = started.elapsed().as_millis() as u64,
                "snapshot published"
            );
            None
        }
        Err(e) => Some(format!(
            "the sync succeeded but its snapshot was not published ({e}); the previous snapshot, if any, is unchanged"
        )),
    }
}

/// One list stream and, through its fan-out, its per-parent streams: their reports, the
/// list's first.
#[tracing::instrument(name = "stream", skip_all, fields(stream = kind.name))]
async fn run_stream(ctx: &Ctx, kind: &'static Stream) -> Vec<StreamReport> {
    let started = Instant::now();
    let stats = ctx.progress.stats(kind.name);
    let stats = stats.as_ref();
    let mut report = StreamReport {
        stream: kind.name,
        ..StreamReport::default()
    };
    let walk_done = AtomicBool::new(false);
    let wake = Notify::new();
    let children = ctx.children(kind);
    let mut fan = FanOutReport::new(children);
    let deferred = defer_indexes_for_first_load(ctx, kind).await;
    let walking = async {
        let mut result = backfill(ctx, kind, children).await;
        if result.is_ok() {
            result = retry_quarantined(ctx, kind, stats, &mut report, &wake).await;
        }
        if result.is_ok() {
            result = walk(ctx, kind, stats, &mut report, &wake).await;
        }
        walk_done.store(true, Ordering::Release);
        wake.notify_one();
        result
    };
    let (walked, fanned) = if !children.is_empty() {
        tokio::join!(walking, fan_out(ctx, kind, children, &walk_done, &wake, &mut fan))
    } else {
        (walking.await, Ok(()))
    };
    // What the fan-out wrote counts whether or not it finished: an interrupted run reports
    // every row it committed.
    report.inserted += fan.parent.inserted;
    report.updated += fan.parent.updated;
    report.unchanged += fan.parent.unchanged;
    report.removed += fan.parent.removed;
    report.quarantined += fan.parent.quarantined;
    let result = walked.and(fanned);
    let result = match (result, deferred) {
        (r, false) => r,
        (r, true) => restore_indexes_unless_loading(ctx, kind, r).await,
    };
    let failed = result.is_err();
    for name in std::iter::once(kind.name).chain(children.iter().map(|c| c.name)) {
        ctx.progress.update(name, |p| {
            p.done = true;
            p.failed = failed;
        });
    }
    report.requests = stats.requests.load(Ordering::Relaxed);
    report.retries = stats.retries.load(Ordering::Relaxed);
    report.rate_limited = stats.rate_limited.load(Ordering::Relaxed);
    report.duration_ms = started.elapsed().as_millis() as u64;
    if let Err(e) = result {
        let failure = e.failure();
        if failure == Failure::Stopped {
            tracing::warn!(
                pages = report.pages,
                "stopped; the next run resumes from the checkpoint"
            );
        } else {
            tracing::error!(error = %e, "stream failed; rows committed before the failure are kept");
        }
        report.failure = Some(failure);
        report.error = Some(e.to_string());
    }
    let mut reports = vec![report];
    for mut child in fan.children {
        let stats = ctx.progress.stats(child.stream);
        child.requests = stats.requests.load(Ordering::Relaxed);
        child.retries = stats.retries.load(Ordering::Relaxed);
        child.rate_limited = stats.rate_limited.load(Ordering::Relaxed);
        child.duration_ms = reports[0].duration_ms;
        child.pass_completed = reports[0].pass_completed;
        // Its lists were fetched by the parent's fan-out: when that failed, so did it. The
        // error line is the parent's alone.
        child.failure = reports[0].failure;
        reports.push(child);
    }
    for r in &reports {
        tracing::info!(
            stream = r.stream,
            inserted = r.inserted,
            updated = r.updated,
            unchanged = r.unchanged,
            removed = r.removed,
            quarantined = r.quarantined,
            pages = r.pages,
            staged = r.staged,
            cursor_restarts = r.cursor_restarts,
            requests = r.requests,
            retries = r.retries,
            rate_limited = r.rate_limited,
            duration_ms = r.duration_ms,
            "stream finished"
        );
    }
    reports
}

/// Walks the stream's list page by page as `walk::Walk` decides, committing each page with
/// the checkpoint that follows it.
async fn walk(
    ctx: &Ctx,
    kind: &'static Stream,
    stats: &Stats,
    report: &mut StreamReport,
    wake: &Notify,
) -> Result<(), Error> {
    let name = kind.name;
    let api_err = |cause| Error::Api { stream: name, cause };
    let store = Arc::clone(&ctx.store);
    let checkpoint = blocking(move || store.load_checkpoint(name)).await?;
    let (mut w, start) = Walk::start(
        kind.mode,
        checkpoint,
        Utc::now(),
        ctx.config.sync.cursor_ttl,
        ctx.config.sync.overlap,
    );
    match start {
        walk::Start::Fresh => {}
        walk::Start::Resumed { pages_done } => {
            tracing::info!(
                pages_done,
                "resuming the interrupted pass from its checkpointed cursor"
            );
        }
        walk::Start::StaleCursor => tracing::warn!(
            pass = w.pass_kind().as_str(),
            "the checkpointed cursor is too old to use; restarting the pass from the high-water mark"
        ),
    }
    if let Some(q) = w.candidate_query() {
        let top: Page<Box<RawValue>> = ctx.api.get(stats, kind.path, &q).await.map_err(api_err)?;
        // An unreadable first item only means no candidate yet: the crawl's first page sets it.
        let first = top.items.first().and_then(|r| kind.read(At::TOP, r).ok());
        w.set_candidate(first.and_then(|i| i.updated_at));
    }
    // Pages handed to the writer whose commits have not landed yet: the next page is fetched
    // and parsed while they are written.
    let mut in_flight = InFlight::default();
    // The next page, fetched while this one was read (see `ahead` below), with its query.
    let mut fetched_ahead: Option<(walk::Query, Fetched)> = None;
    let mut said_oversized = false;
    let mut recent = RecentPages::default();
    // Whether this run already scanned a second time to settle rows without an id.
    let mut rescanned = false;
    let result = loop {
        if ctx.stop.is_stopped() {
            break Err(api_err(api::Error::Stopped {
                path: kind.path.to_owned(),
            }));
        }
        if let Err(e) = in_flight.reap(ctx, kind, report, wake, MAX_PAGES_IN_FLIGHT).await {
            break Err(e);
        }
        let q = w.query(ctx.config.api.page_size);
        let fetched = match fetched_ahead.take() {
            Some((ahead, fetched)) if ahead == q => fetched,
            _ => ctx.api.get(stats, kind.path, &q).await,
        };
        let page: Page<Box<RawValue>> = match fetched {
            Ok(p) => p,
            Err(e) if e.is_bad_request() && w.refused() => {
                tracing::warn!(error = %e, "the API refused the cursor; restarting the pass from the high-water mark");
                report.cursor_restarts += 1;
                recent.clear();
                continue;
            }
            Err(e) => break Err(api_err(e)),
        };
        // The docs are vague on limits: more items than asked for are stored (a real sync must
        // not fail over it), and said once per walk.
        if page.items.len() > ctx.config.api.page_size as usize && !said_oversized {
            said_oversized = true;
            tracing::warn!(
                asked = ctx.config.api.page_size,
                got = page.items.len(),
                "the API sent more items than the page size asked for; storing them all"
            );
        }
        // A pass that walks to the end of its list (a bootstrap or a scan) will ask for `next`
        // whatever this page holds, so that request goes out now and the page is read on a
        // blocking thread meanwhile: the walk then waits for one page at a time, not for a
        // page and its reading. An incremental pass may stop at this page, so it does not ask
        // ahead (a run with nothing changed stays one request).
        let ahead = w
            .walks_to_the_end()
            .then(|| page.next.clone().filter(|n| !n.is_empty()))
            .flatten()
            .map(|next| w.query_at(ctx.config.api.page_size, Some(&next)));
        let Page { next, items: raw } = page;
        let (read, ahead) = tokio::join!(
            tokio::task::spawn_blocking(move || read_page(kind, &raw)),
            async {
                match ahead {
                    Some(q) => {
                        let fetched = ctx.api.get(stats, kind.path, &q).await;
                        Some((q, fetched))
                    }
                    None => None,
                }
            }
        );
        fetched_ahead = ahead;
        let (items, bad) = match read {
            Ok(read) => read,
            Err(e) => break Err(Error::Setup(format!("reading a page failed: {e}"))),
        };
        // Fresh cursors over the same items are a loop too: a page that only repeats items of
        // the pass's last few pages ends it (a first load, which appends, would store them
        // again on every page).
        // Only in a first load's crawl (sort=+created_at): there rows never shift back under
        // the cursor, while an incremental pass legitimately re-lists rows updated meanwhile.
        if w.pass_kind() == crate::store::checkpoint::PassKind::Bootstrap && recent.repeats(&items) {
            break Err(Error::Looping { stream: name });
        }
        let Ok(step) = w.page(&items, next, Utc::now()) else {
            break Err(Error::Looping { stream: name });
        };
        let seen: Vec<String> = if kind.mode == Mode::Scan {
            items.iter().map(|i| i.key.clone()).collect()
        } else {
            Vec::new()
        };
        let (rows, stage) = rows_or_staged(ctx, kind, items);
        let commit = Commit {
            stream: name,
            rows,
            stage,
            checkpoint: Some(step.checkpoint),
            sweep_quarantine_before: step.sweep_quarantine_before,
            quarantined: bad,
            reset_seen: step.reset_seen,
            seen,
            ..Commit::default()
        };
        in_flight.push(ctx.writer.send(commit).await, step.done);
        match w.committed(Utc::now()) {
            Next::Fetch => {}
            // The bootstrap's pages are all in: its table's indexes are built before the
            // catch-up pass re-lists the newest rows, which then find their stored copies by
            // key instead of being stored again (and folded) in a keyless table.
            Next::CatchUp => {
                recent.clear();
                let built = match in_flight.reap(ctx, kind, report, wake, 0).await {
                    Ok(()) => restore_indexes_unless_loading(ctx, kind, Ok(())).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = built {
                    break Err(e);
                }
            }
            Next::Rescan => {
                recent.clear();
                tracing::info!(
                    "the resumed scan is complete; scanning once more from the start to detect removals"
                );
            }
            // Removals are decided from every key the scan listed: all its pages first.
            Next::ConfirmRemovals => {
                let checked = match in_flight.reap(ctx, kind, report, wake, 0).await {
                    Ok(()) => confirm_removals(ctx, kind, stats, report).await,
                    Err(e) => Err(e),
                };
                match checked {
                    // Rows without an id cannot be asked about: a second whole scan, at once,
                    // settles them (a row both scans miss is gone), so one run converges.
                    Ok(missed) if missed > 0 && !rescanned => {
                        rescanned = true;
                        tracing::info!(
                            missed,
                            "rows without an id were not listed: scanning once more to confirm their removal"
                        );
                        w.rescan(Utc::now());
                        recent.clear();
                    }
                    other => break other.map(|_| ()),
                }
            }
            Next::Done => break Ok(()),
        }
    };
    // Whatever ended the walk, the pages already handed over land (or fail) before it returns.
    let landed = in_flight.reap(ctx, kind, report, wake, 0).await;
    result.and(landed)
}

/// The item keys of a pass's last few pages, hashed: what `repeats` compares a page with.
#[derive(Default)]
struct RecentPages(std::collections::VecDeque<std::collections::HashSet<u64>>);

impl RecentPages {
    /// Pages remembered: a loop of fresh cursors over up to this many pages is caught.
    const PAGES: usize = 8;
    /// A page this short may repeat itself legitimately (rows shifting under a small page).
    const MIN_ITEMS: usize = 10;

    /// Whether every item of `items` was on one of the last pages; remembers this page.
    fn repeats(&mut self, items: &[Item]) -> bool {
        use std::hash::BuildHasher as _;
        let hasher = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let keys: std::collections::HashSet<u64> = items.iter().map(|i| hasher.hash_one(&i.key)).collect();
        let repeated =
            keys.len() >= Self::MIN_ITEMS && keys.iter().all(|k| self.0.iter().any(|page| page.contains(k)));
        self.0.push_back(keys);
        if self.0.len() > Self::PAGES {
            self.0.pop_front();
        }
        repeated
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Pages a walk may have handed to the writer and not yet seen land: enough for the writer to
/// group them (see `store::Writer`), few enough to keep memory flat (about 32 × 100 rows).
const MAX_PAGES_IN_FLIGHT: usize = 32;

/// A walk's pages on their way to the database, oldest first, each with whether it completes
/// its pass.
#[derive(Default)]
struct InFlight(std::collections::VecDeque<(store::Pending, bool)>);

impl InFlight {
    fn push(&mut self, pending: store::Pending, completes_pass: bool) {
        self.0.push_back((pending, completes_pass));
    }

    /// Counts the pages that have landed into `report`, waiting for the oldest while more than
    /// `keep` are still on their way; the first failure ends the walk.
    async fn reap(
        &mut self,
        ctx: &Ctx,
        kind: &'static Stream,
        report: &mut StreamReport,
        wake: &Notify,
        keep: usize,
    ) -> Result<(), Error> {
        loop {
            let must_wait = self.0.len() > keep;
            let Some((pending, _)) = self.0.front_mut() else {
                return Ok(());
            };
            let ready = if must_wait { None } else { pending.try_landed() };
            if !must_wait && ready.is_none() {
                return Ok(());
            }
            let Some((pending, completes_pass)) = self.0.pop_front() else {
                return Ok(());
            };
            let committed = match ready {
                Some(r) => r,
                None => pending.landed().await,
            };
            let counts = count(committed.map_err(Error::Store)?, report);
            // The fan-out looks for staged parents once a page has landed.
            wake.notify_one();
            report.pages += 1;
            report.pass_completed |= completes_pass;
            ctx.progress.update(kind.name, |p| {
                p.pages += 1;
                p.rows += counts.inserted + counts.updated + counts.unchanged;
            });
            tracing::debug!(
                inserted = counts.inserted,
                updated = counts.updated,
                unchanged = counts.unchanged,
                "page committed"
            );
        }
    }
}

/// A page's rows, as (rows to write, rows to stage): parents with sub-resources wait in staging
/// for the fan-out, so the walk moves on at once.
fn rows_or_staged(ctx: &Ctx, kind: &'static Stream, items: Vec<Item>) -> (Vec<store::Row>, Vec<store::Row>) {
    let rows = items.into_iter().map(|i| i.row).collect();
    if !ctx.children(kind).is_empty() {
        (Vec::new(), rows)
    } else {
        (rows, Vec::new())
    }
}

/// What asking for one list page got.
type Fetched = Result<Page<Box<RawValue>>, api::Error>;

/// Splits a page into the items that read and those that go to quarantine.
fn read_page(kind: &'static Stream, raw: &[Box<RawValue>]) -> (Vec<Item>, Vec<Quarantined>) {
    let mut items = Vec::with_capacity(raw.len());
    let mut bad = Vec::new();
    for r in raw {
        match kind.read(At::TOP, r) {
            Ok(item) => items.push(item),
            Err(error) => bad.push(streams::quarantined(kind.name, r, error)),
        }
    }
    (items, bad)
}

/// Commits one page's writes and counts them into `report`.
async fn commit_page(ctx: &Ctx, commit: Commit, report: &mut StreamReport) -> Result<Counts, Error> {
    let committed = ctx.writer.send(commit).await.landed().await?;
    Ok(count(committed, report))
}

/// Counts what a commit wrote into `report`; each item quarantined for the first time gets one
/// warning.
fn count(committed: store::Committed, report: &mut StreamReport) -> Counts {
    for q in &committed.newly_quarantined {
        tracing::warn!(
            item = %crate::http::printable(&q.key, 200),
            table = q.stream,
            error = %crate::http::printable(&q.error, crate::http::MESSAGE_CHARS),
            "an item could not be read: it is kept in quarantine, the rest of its page is stored, and it is tried again every run"
        );
    }
    let counts = committed.counts;
    report.staged += committed.staged;
    report.quarantined += committed.newly_quarantined.len() as u64;
    report.inserted += counts.inserted;
    report.updated += counts.updated;
    report.unchanged += counts.unchanged;
    report.removed += counts.removed;
    counts
}

/// Fetches the stream's quarantined items again by id (incremental streams only: scans list
/// them again anyway). One that reads now is stored and leaves quarantine; one the API no longer
/// has (404) leaves it too.
async fn retry_quarantined(
    ctx: &Ctx,
    kind: &'static Stream,
    stats: &Stats,
    report: &mut StreamReport,
    wake: &Notify,
) -> Result<(), Error> {
    if kind.mode != Mode::Incremental {
        return Ok(());
    }
    let name = kind.name;
    let store = Arc::clone(&ctx.store);
    let ids = blocking(move || store.quarantined_ids(name)).await?;
    for id in ids {
        let fetched = match fetch_by_id(ctx, kind, stats, &id).await {
            // One item the API will not give back (400, too large, unreadable) stays in
            // quarantine: it must not stop the stream's walk, run after run.
            Err(Error::Api { cause, .. }) if quarantine_can_wait(&cause) => {
                tracing::warn!(
                    item = %crate::http::printable(&id, 200),
                    error = %cause,
                    "a quarantined item could not be fetched again; it stays in quarantine"
                );
                continue;
            }
            other => other?,
        };
        let raw = match fetched {
            ById::Found(raw) => raw,
            ById::Gone => {
                let store = Arc::clone(&ctx.store);
                blocking(move || store.release_quarantine(name, &id)).await?;
                continue;
            }
            // Stays in quarantine, where an operator sees it.
            ById::Unaddressable => continue,
        };
        let (items, bad) = read_page(kind, std::slice::from_ref(&raw));
        if !items.is_empty() {
            tracing::info!(item = %crate::http::printable(&id, 200), "a quarantined item reads now; stored");
        }
        let (rows, stage) = rows_or_staged(ctx, kind, items);
        let commit = Commit {
            stream: name,
            rows,
            stage,
            quarantined: bad,
            ..Commit::default()
        };
        commit_page(ctx, commit, report).await?;
        wake.notify_one();
    }
    Ok(())
}

/// Whether fetching one quarantined item failed for that item alone (not for the run: a stop,
/// a refused token, a rate limit or a dead API end the walk as usual).
fn quarantine_can_wait(cause: &api::Error) -> bool {
    matches!(
        cause.root(),
        api::Error::Refused { .. } | api::Error::TooLarge { .. } | api::Error::Malformed { .. }
    )
}

/// What asking for one item by id found.
enum ById {
    Found(Box<RawValue>),
    /// 404: the API no longer has it.
    Gone,
    /// An id no URL can address (`.`, `..`, empty): nothing was asked.
    Unaddressable,
}

/// One item by id (`{path}/{id}`, the id escaped as one path segment).
async fn fetch_by_id(ctx: &Ctx, kind: &'static Stream, stats: &Stats, id: &str) -> Result<ById, Error> {
    let Some(path) = api::item_path(kind.path, id, None) else {
        return Ok(ById::Unaddressable);
    };
    match ctx.api.get(stats, &path, &[]).await {
        Ok(raw) => Ok(ById::Found(raw)),
        Err(e) if e.is_not_found() => Ok(ById::Gone),
        Err(cause) => Err(Error::Api {
            stream: kind.name,
            cause,
        }),
    }
}

/// After a complete scan: asks the API about each live row the scan did not list, because a
/// traversal is not a snapshot and rows shift under the cursor. A 404 confirms the removal; an
/// item the API still has is stored again (it was only missed); a row with no id to ask about
/// (a legacy consent) counts one more miss and is removed at two consecutive misses.
/// Returns how many candidates had no id to ask about (counted as missed once more).
async fn confirm_removals(
    ctx: &Ctx,
    kind: &'static Stream,
    stats: &Stats,
    report: &mut StreamReport,
) -> Result<usize, Error> {
    let name = kind.name;
    let store = Arc::clone(&ctx.store);
    let candidates = blocking(move || store.removal_candidates(name)).await?;
    if candidates.is_empty() {
        return Ok(0);
    }
    let mut confirmed = Vec::new();
    let mut missed = Vec::new();
    let mut still_listed = Vec::new();
    for (key, id) in candidates {
        let Some(id) = id else {
            missed.push(key);
            continue;
        };
        match fetch_by_id(ctx, kind, stats, &id).await? {
            ById::Found(raw) => {
                let (items, _) = read_page(kind, std::slice::from_ref(&raw));
                still_listed.extend(items.into_iter().map(|i| i.row));
            }
            ById::Gone => confirmed.push(key),
            // Like a row without an id where the table counts misses (removed only when two
            // scans in a row miss it); elsewhere it stays, rather than cost a second scan every
            // run for a row nothing can settle.
            ById::Unaddressable if crate::store::counts_misses(name) => missed.push(key),
            ById::Unaddressable => {}
        }
    }
    tracing::info!(
        confirmed = confirmed.len(),
        still_there = still_listed.len(),
        missed_without_id = missed.len(),
        "removal candidates checked"
    );
    let commit = Commit {
        stream: name,
        rows: still_listed,
        removals: Some(Removals {
            table: name,
            confirmed,
            missed,
        }),
        ..Commit::default()
    };
    let without_id = commit.removals.as_ref().map_or(0, |r| r.missed.len());
    commit_page(ctx, commit, report).await?;
    Ok(without_id)
}
