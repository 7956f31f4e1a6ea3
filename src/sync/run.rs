//! A run: the lock, the streams side by side under one pace, the progress lines, the ceiling
//! on its length, and what it leaves behind (the run row, the checkpoint, the snapshot).

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use super::ctx::{Ctx, blocking};
use super::error::Error;
use super::progress;
use super::report::{Progress, RunReport, RunStatus, StreamReport};
use super::stream::run_stream;
use crate::api::{self, ApiClient, Stats};
use crate::config::Config;
use crate::shutdown::Stop;
use crate::store::{self, Store};
use crate::streams::Stream;

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
pub(super) fn children_by_parent(
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

/// What a run shares with the rest of its process when `run` also serves the webhook receiver.
#[derive(Clone)]
pub struct Shared {
    /// The one pace of the process: the applier's requests and the syncs' spend one budget.
    pub pace: crate::pace::Pace,
    /// A receiver is up in this process (its start recorded): the listing counts what no
    /// delivery brought. A receiver's rows in `webhook_state` alone do not say it is alive (a
    /// killed one never records its stop), so a listing elsewhere never counts.
    pub receiving: bool,
}

/// Runs one sync of every enabled stream, concurrently, and records it in `sync_runs`; each
/// committed page is reported to `progress` (the terminal display reads it). It shares `shared`
/// with `run`'s webhook applier or, with `None`, keeps a pace of its own that starts where the
/// last run's left off.
pub async fn run_sharing(
    config: &Config,
    stop: Stop,
    progress: Arc<Progress>,
    shared: Option<Shared>,
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
    let children = children_by_parent(&config.streams);
    settle_deferred_indexes(&store, config, &children).await?;
    let receiving = shared.as_ref().is_some_and(|s| s.receiving);
    let api = match shared {
        Some(shared) => ApiClient::with_pace(config, &config.scopes(), stop.clone(), shared.pace),
        None => {
            let s = Arc::clone(&store);
            let learned = blocking(move || s.load_pace()).await?;
            ApiClient::new(config, &config.scopes(), stop.clone(), learned)
        }
    }
    .map_err(Error::Client)?;
    authenticate(&api, &stop).await?;
    warn_if_aging(&api);
    let s = Arc::clone(&store);
    let webhook_since = if receiving {
        blocking(move || s.webhook_watch_since()).await?
    } else {
        None
    };
    let s = Arc::clone(&store);
    let watching = webhook_since.is_some();
    let run_id = blocking(move || s.start_run(Utc::now(), watching)).await?;
    let ctx = Arc::new(Ctx {
        api,
        writer: store::Writer::start(Arc::clone(&store)),
        store: Arc::clone(&store),
        config: config.clone(),
        stop: stop.clone(),
        progress,
        children,
        webhook_since,
        budget: crate::memory::Budget::new(config.sync.max_in_flight_bytes, config.api.max_response_bytes),
    });
    let (streams, lists) = run_streams(&ctx, config, run_id).await?;
    // A per-parent stream fails with its parent's fan-out, which holds the error.
    let failed = streams.iter().filter(|s| s.error.is_some()).count();
    let status = if stop.is_stopped() && failed > 0 {
        RunStatus::Interrupted
    } else if failed == 0 {
        RunStatus::Succeeded
    } else if failed == lists {
        RunStatus::Failed
    } else {
        RunStatus::Partial
    };
    let mut report = RunReport {
        run_id,
        status,
        streams,
        duration_ms: started.elapsed().as_millis() as u64,
        last_success: None,
        pace: ctx.api.pace().report(),
        quarantined: 0,
        refresh_token: ctx.api.tokens().refresh_token_info(),
        snapshot_error: None,
        webhook_missed: None,
    };
    report.webhook_missed = ctx.webhook_since.map(|_| report.total().webhook_missed);
    finish_run(&store, &mut report, ctx.api.pace().learned()).await?;
    if let Some(snapshot) = config.snapshot.clone().filter(|_| status == RunStatus::Succeeded) {
        report.snapshot_error = publish_snapshot(Arc::clone(&store), snapshot).await;
    }
    close(ctx, store).await;
    Ok(report)
}

/// Indexes a first load set aside for a stream this config no longer runs would otherwise wait
/// for a load that never completes; a key set aside for a table whose per-parent streams are
/// now enabled is needed before their fan-out looks parents up by it. Both are built now.
async fn settle_deferred_indexes(
    store: &Arc<Store>,
    config: &Config,
    children: &std::collections::HashMap<&'static str, Vec<&'static Stream>>,
) -> Result<(), Error> {
    let s = Arc::clone(store);
    let enabled: Vec<&'static str> = config.streams.iter().map(|s| s.name).collect();
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
    .await
}

/// A refused key or a dead token endpoint fails the run here, once, with one clear line,
/// before any stream starts (and retries it three times over).
async fn authenticate(api: &ApiClient, stop: &Stop) -> Result<(), Error> {
    let token_stats = Stats::default();
    let authenticated = tokio::select! {
        r = api.authenticate(&token_stats) => r,
        // A stop while the token endpoint is slow is a stop (exit 7), not a failed key.
        () = stop.stopped() => return Err(Error::Stopped { stream: None }),
    };
    match authenticated {
        Ok(_) => Ok(()),
        Err(api::Error::Auth(a)) => Err(Error::Auth(a)),
        Err(other) => Err(Error::Token(other)),
    }
}

/// Every list stream at once, each with its per-parent streams (which run inside their
/// parent's fan-out, not as tasks of their own), while the progress lines are written. Returns
/// the reports in config order and how many list streams ran.
async fn run_streams(
    ctx: &Arc<Ctx>,
    config: &Config,
    run_id: i64,
) -> Result<(Vec<StreamReport>, usize), Error> {
    let lists: Vec<&'static Stream> = config
        .streams
        .iter()
        .copied()
        .filter(|s| s.parent().is_none())
        .collect();
    ctx.progress.register(&config.streams);
    // Gone with the run, however it ends (a task dropped mid-run leaves no ticker saving a pace
    // nobody uses over the next run's).
    let mut ticker = AbortOnDrop(tokio::spawn(progress::report(Arc::clone(ctx), run_id)));
    let mut tasks = tokio::task::JoinSet::new();
    for stream in lists.iter().copied() {
        let ctx = Arc::clone(ctx);
        tasks.spawn(async move { run_stream(&ctx, stream).await });
    }
    let mut streams: Vec<StreamReport> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => streams.extend(r),
            Err(e) => {
                return Err(Error::Task {
                    what: "a stream task",
                    detail: e.to_string(),
                });
            }
        }
    }
    ticker.0.abort();
    let _ = (&mut ticker.0).await;
    // In config order, each per-parent stream with its own line after the parents.
    let order = |name: &str| config.streams.iter().position(|s| s.name == name);
    streams.sort_by_key(|r| order(r.stream));
    Ok((streams, lists.len()))
}

/// The run's row in `sync_runs` finished, the learned pace kept, and the last success read back.
async fn finish_run(
    store: &Arc<Store>,
    report: &mut RunReport,
    learned: crate::pace::Learned,
) -> Result<(), Error> {
    let total = report.total();
    let pace = report.pace;
    let errors: Vec<String> = report.streams.iter().filter_map(|s| s.error.clone()).collect();
    let s = Arc::clone(store);
    let quarantined = blocking(move || s.quarantine_count()).await?;
    report.quarantined = quarantined;
    use rusqlite::types::Value;
    let params: store::Params = vec![
        (":status", Value::Text(report.status.as_str().to_owned())),
        (":rows_inserted", Value::Integer(total.inserted as i64)),
        (":rows_updated", Value::Integer(total.updated as i64)),
        (":rows_unchanged", Value::Integer(total.unchanged as i64)),
        (":rows_removed", Value::Integer(total.removed as i64)),
        (":requests", Value::Integer(total.requests as i64)),
        (":retries", Value::Integer(total.retries as i64)),
        // The pace's count: the token endpoint's 429s too.
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
    let s = Arc::clone(store);
    let run_id = report.run_id;
    report.last_success = blocking(move || {
        s.save_pace(&learned, Utc::now())?;
        s.finish_run(run_id, &params, Utc::now())?;
        s.last_success()
    })
    .await?
    .and_then(|t| crate::time::from_iso(&t));
    Ok(())
}

/// `stop`, or `max_run` after now, whichever comes first: past its ceiling a run stops as on
/// SIGTERM (the page in flight lands, the run is `interrupted`, the next one resumes).
pub(super) fn with_ceiling(stop: Stop, max_run: std::time::Duration) -> (Stop, tokio::task::JoinHandle<()>) {
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
pub(super) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits for the writer thread, copies the WAL into the database (a passive checkpoint, which
/// blocks no reader) and closes the connection; for `run`, whose process lives on, that also
/// releases the file between syncs.
pub(super) async fn close(ctx: Arc<Ctx>, store: Arc<Store>) {
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
pub(super) async fn publish_snapshot(store: Arc<Store>, snapshot: crate::config::Snapshot) -> Option<String> {
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
