//! Asking the API about single items: quarantined ones read again, and rows a complete scan
//! missed, confirmed gone or found.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::commit::{commit_page, read_page, rows_or_staged};
use super::ctx::{StreamRun, blocking};
use super::error::Error;
use super::report::StreamReport;
use crate::api::{self, ById, Tries};
use crate::store::{Commit, Removals};
use crate::streams::Mode;

/// At most this many of a stream's quarantined items are asked for by id in one run: with
/// thousands in quarantine, asking for all would take the run's time from everything else.
/// The rest wait their turn, longest waiting first (`quarantine.retried_at`).
pub(super) const QUARANTINE_RETRIES_PER_RUN: usize = 100;

/// Nor for longer than this, or a tenth of the run's ceiling (`sync.max_run_secs`) if less.
pub(super) const QUARANTINE_RETRY_TIME: Duration = Duration::from_secs(60);

/// Fetches some of the stream's quarantined items again by id, after its walk (incremental
/// streams only: scans list them again anyway). One that reads now is stored and leaves
/// quarantine; one the API no longer has (404) leaves it too. Each is asked once, behind the
/// walks, and a failure is that item's alone: it stays in quarantine and waits for a later
/// run, and the failures are said in one line. Only a stop, or a failed write, ends this early
/// with an error.
pub(super) async fn retry_quarantined(run: StreamRun<'_>, report: &mut StreamReport) -> Result<(), Error> {
    let StreamRun { ctx, stream, .. } = run;
    if stream.mode != Mode::Incremental {
        return Ok(());
    }
    let name = stream.name;
    let store = Arc::clone(&ctx.store);
    let ids = blocking(move || store.quarantined_ids(name, QUARANTINE_RETRIES_PER_RUN)).await?;
    let deadline = Instant::now() + QUARANTINE_RETRY_TIME.min(ctx.config.sync.max_run / 10);
    let mut failed = Failed::default();
    for id in ids {
        if Instant::now() >= deadline {
            failed.out_of_time = true;
            break;
        }
        let store = Arc::clone(&ctx.store);
        let noted = id.clone();
        blocking(move || store.quarantine_retried(name, &noted, Utc::now())).await?;
        let fetched = match run.ctx.api.by_id(run.stats, stream.path, &id, Tries::Once).await {
            Ok(fetched) => fetched,
            // A stop, or a token the API refuses, ends the stream as it would end its walk.
            Err(cause) if ends_stream(&cause) => {
                return Err(Error::Api { stream: name, cause });
            }
            // A 429, or a token endpoint failing for now, is the API's verdict on the run, not
            // on the item: asking for the next one at once only earns another (and cuts the
            // pace later runs keep).
            Err(cause) if halts_retries(&cause) => {
                failed.note(&cause);
                failed.halted = true;
                break;
            }
            Err(cause) => {
                failed.note(&cause);
                continue;
            }
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
        let (items, bad) = read_page(stream, std::slice::from_ref(&raw));
        if !items.is_empty() {
            tracing::info!(item = %crate::http::printable(&id, 200), "a quarantined item reads now; stored");
        }
        let (rows, stage) = rows_or_staged(ctx, stream, items);
        let commit = Commit {
            stream: name,
            rows,
            stage,
            quarantined: bad,
            ..Commit::default()
        };
        commit_page(ctx, commit, report).await?;
        run.wake.notify_one();
    }
    failed.say();
    Ok(())
}

/// Whether a by-id failure ends the stream: a stop, or a token the API or its token endpoint
/// refuses (the run's failure, exit 3, as in a walk).
fn ends_stream(cause: &api::Error) -> bool {
    match cause.root() {
        api::Error::Stopped { .. } | api::Error::Unauthorized { .. } => true,
        api::Error::Auth(a) => !a.is_transient(),
        _ => false,
    }
}

/// Whether a by-id failure ends this run's retries: a rate limit, or a token endpoint failing
/// for now, says nothing of the item asked for.
fn halts_retries(cause: &api::Error) -> bool {
    matches!(cause.root(), api::Error::RateLimited { .. } | api::Error::Auth(_))
}

/// The quarantined items a run could not fetch again, said once.
#[derive(Default)]
struct Failed {
    count: usize,
    first: Option<String>,
    out_of_time: bool,
    /// The API rate-limited or refused a retry: the rest wait for a later run.
    halted: bool,
}

impl Failed {
    fn note(&mut self, cause: &api::Error) {
        self.count += 1;
        self.first.get_or_insert_with(|| cause.to_string());
    }

    fn say(&self) {
        if self.count > 0 {
            tracing::warn!(
                items = self.count,
                first_error = self.first.as_deref().unwrap_or_default(),
                "quarantined items could not be fetched again; they stay in quarantine and a later run asks again"
            );
        }
        if self.halted {
            tracing::info!(
                "the API rate-limited a quarantine retry (or its token endpoint failed); the rest wait for a later run"
            );
        }
        if self.out_of_time {
            tracing::info!(
                "quarantined items were asked for as long as a run spends on them; the rest wait for a later run"
            );
        }
    }
}

/// One item by id, with the usual retries, a failure the stream's.
async fn fetch_by_id(run: StreamRun<'_>, id: &str) -> Result<ById, Error> {
    run.ctx
        .api
        .by_id(run.stats, run.stream.path, id, Tries::Retried)
        .await
        .map_err(|cause| Error::Api {
            stream: run.stream.name,
            cause,
        })
}

/// After a complete scan: asks the API about each live row the scan did not list, because a
/// traversal is not a snapshot and rows shift under the cursor. A 404 confirms the removal; an
/// item the API still has is stored again (it was only missed); a row with no id to ask about
/// (a legacy consent) counts one more miss and is removed at two consecutive misses.
/// Returns how many candidates had no id to ask about (counted as missed once more).
pub(super) async fn confirm_removals(run: StreamRun<'_>, report: &mut StreamReport) -> Result<usize, Error> {
    let StreamRun { ctx, stream, .. } = run;
    let name = stream.name;
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
        match fetch_by_id(run, &id).await? {
            ById::Found(raw) => {
                let (items, _) = read_page(stream, std::slice::from_ref(&raw));
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
        watch_since: ctx.watch_since(stream),
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
