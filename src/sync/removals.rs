//! Asking the API about single items: quarantined ones read again, and rows a complete scan
//! missed, confirmed gone or found.

use std::sync::Arc;

use super::commit::{commit_page, read_page, rows_or_staged};
use super::ctx::{StreamRun, blocking};
use super::error::Error;
use super::report::StreamReport;
use crate::api::{self, ById};
use crate::store::{Commit, Removals};
use crate::streams::Mode;

/// Fetches the stream's quarantined items again by id (incremental streams only: scans list
/// them again anyway). One that reads now is stored and leaves quarantine; one the API no longer
/// has (404) leaves it too.
pub(super) async fn retry_quarantined(run: StreamRun<'_>, report: &mut StreamReport) -> Result<(), Error> {
    let StreamRun { ctx, stream, .. } = run;
    if stream.mode != Mode::Incremental {
        return Ok(());
    }
    let name = stream.name;
    let store = Arc::clone(&ctx.store);
    let ids = blocking(move || store.quarantined_ids(name)).await?;
    for id in ids {
        let fetched = match fetch_by_id(run, &id).await {
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
    Ok(())
}

/// Whether fetching one quarantined item failed for that item alone (not for the run: a stop,
/// a refused token, a rate limit or a dead API end the walk as usual).
pub(super) fn quarantine_can_wait(cause: &api::Error) -> bool {
    matches!(
        cause.root(),
        api::Error::Refused { .. } | api::Error::TooLarge { .. } | api::Error::Malformed { .. }
    )
}

/// One item by id, a failure the stream's.
async fn fetch_by_id(run: StreamRun<'_>, id: &str) -> Result<ById, Error> {
    run.ctx
        .api
        .by_id(run.stats, run.stream.path, id)
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
