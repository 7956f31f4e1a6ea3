//! A stream's first full load into an empty table: its indexes set aside while it fills,
//! and built once it is complete.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use super::ctx::{Ctx, blocking};
use super::error::Error;
use super::walk;
use crate::streams::Stream;

/// Sets aside the secondary indexes of a stream's table before its first full load into an
/// empty table (`Store::defer_indexes`), and its key too when no per-parent stream of it runs
/// (their fan-out looks parents up by key); true if the stream has indexes set aside now, from
/// this run or from an interrupted earlier one. A failure only costs speed, so it is logged.
pub(super) async fn defer_indexes_for_first_load(ctx: &Ctx, stream: &'static Stream) -> bool {
    let store = Arc::clone(&ctx.store);
    let name = stream.name;
    let mode = stream.mode;
    let keyless = ctx.children(stream).is_empty();
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
pub(super) async fn restore_indexes_unless_loading(
    ctx: &Ctx,
    stream: &'static Stream,
    result: Result<(), Error>,
) -> Result<(), Error> {
    let store = Arc::clone(&ctx.store);
    let name = stream.name;
    let mode = stream.mode;
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
