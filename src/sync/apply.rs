//! The applier: takes the deliveries the webhook receiver recorded, oldest first, fetches the
//! item each names by id, and stores it through the listing sync's own path: the same pace, the
//! same reading (an unreadable item goes to quarantine), the same writer, the same per-parent
//! lists fetched with it (a booking's tickets and answers when those streams are on).
//!
//! A delivery is only a hint that an item changed: the item is fetched as it is now, so
//! duplicates and deliveries out of order converge on the API's state. An answer older than the
//! stored row (the API behind a replica) changes nothing. A 404 after a removing event (a
//! cancelled event, a deleted experience) marks the row removed as a confirmed removal does.
//! A delivery whose fetch fails stays waiting, its error kept, and is tried again after a pause;
//! deliveries behind it wait, so a change is never applied before an earlier one of the same
//! item. Applied deliveries are pruned after `webhooks.keep_days`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;

use super::commit::read_page;
use super::ctx::{Ctx, blocking};
use super::error::Error;
use super::fan_out::fetch_children;
use super::report::Progress;
use crate::api::{self, ApiClient, ById, Stats, Tries};
use crate::config::Config;
use crate::pace::Pace;
use crate::shutdown::Stop;
use crate::store::{self, Commit, Delivered, Outcome, Removals, Store, Waiting};
use crate::streams::{Mode, Stream};

/// Deliveries read from the inbox at a time.
const BATCH: usize = 64;
/// With nothing arriving, the inbox is looked at this often anyway (a delivery recorded by a
/// receiver in another process, or one left waiting by a failure).
const IDLE_LOOK: Duration = Duration::from_secs(5);
/// After a failed fetch the applier waits this long, doubling up to [`MAX_PAUSE`]: a 429 asks
/// for a minute anyway, and an API that is down is not asked again and again.
const FIRST_PAUSE: Duration = Duration::from_secs(2);
const MAX_PAUSE: Duration = Duration::from_secs(300);
/// A delivery whose item the API keeps failing (5xx, the network, 429s) is tried this many times,
/// then given up (outcome `failed`), so one item cannot hold every delivery behind it for ever;
/// the next listing sync brings it. With the pauses between tries, that is some ten minutes.
const MAX_TRIES: u32 = 10;
/// How often applied deliveries past their keeping time are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// Applies deliveries until `stop`. Store errors end it (the caller says so and `run` exits);
/// the API's failures only pause it.
pub async fn apply_webhooks(
    config: &Config,
    stop: Stop,
    arrived: Arc<Notify>,
    pace: Pace,
) -> Result<(), Error> {
    let Some(hooks) = config.webhooks.clone() else {
        return Ok(());
    };
    let path = config.database.clone();
    let store = Arc::new(blocking(move || Store::open(&path)).await?);
    let api = ApiClient::with_pace(config, &config.scopes(), stop.clone(), pace).map_err(Error::Client)?;
    let ctx = Ctx {
        api,
        writer: store::Writer::start(Arc::clone(&store)),
        store: Arc::clone(&store),
        config: config.clone(),
        stop: stop.clone(),
        progress: Arc::new(Progress::default()),
        budget: crate::memory::Budget::new(config.sync.max_in_flight_bytes, config.api.max_response_bytes),
        children: super::run::children_by_parent(&config.streams),
        webhook_since: None,
    };
    let stats = Stats::default();
    let mut pause = FIRST_PAUSE;
    let mut pruned_at: Option<std::time::Instant> = None;
    loop {
        if stop.is_stopped() {
            return Ok(());
        }
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            let s = Arc::clone(&store);
            let before = Utc::now() - hooks.keep;
            let n = blocking(move || s.prune_inbox(before)).await?;
            if n > 0 {
                tracing::info!(
                    deliveries = n,
                    "applied webhook deliveries past their keeping time pruned"
                );
            }
            pruned_at = Some(std::time::Instant::now());
        }
        let woken = arrived.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let s = Arc::clone(&store);
        let batch = blocking(move || s.waiting(BATCH)).await?;
        let failed = apply_batch(&ctx, &stats, batch.clone()).await?;
        match failed {
            Some(wait) => {
                let wait = wait.unwrap_or(pause);
                tokio::select! {
                    () = stop.sleep(wait) => {}
                }
                pause = (pause * 2).min(MAX_PAUSE);
            }
            None if batch.len() == BATCH => pause = FIRST_PAUSE,
            None => {
                pause = FIRST_PAUSE;
                tokio::select! {
                    () = &mut woken => {}
                    () = stop.sleep(IDLE_LOOK) => {}
                }
            }
        }
    }
}

/// Applies a batch in order; on the first failure returns how long to pause (`Some(None)`: the
/// usual backoff), leaving it and the rest waiting.
async fn apply_batch(
    ctx: &Ctx,
    stats: &Stats,
    batch: Vec<Waiting>,
) -> Result<Option<Option<Duration>>, Error> {
    for w in batch {
        match apply_one(ctx, stats, &w).await {
            Ok(None) => {}
            Ok(Some(outcome)) => {
                let lag = lag_ms(&w);
                let s = Arc::clone(&ctx.store);
                blocking(move || s.applied(w.seq, outcome, lag, Utc::now())).await?;
            }
            Err(Error::Api { cause, .. }) if !matches!(cause.root(), api::Error::Stopped { .. }) => {
                let error = crate::http::printable(&cause.to_string(), crate::http::MESSAGE_CHARS);
                // A key the API refuses is the operator's to fix (the listing sync fails too,
                // and says so): the delivery waits, however long. A refusal of this one item
                // (a 4xx, an answer too large or unreadable) will not change: it is given up at
                // once. Anything else is the API's moment: tried again after a pause, up to
                // `MAX_TRIES`.
                // A 429 is the API's verdict on the pace, not on the item: it never counts
                // toward giving the delivery up.
                let rate_limited = matches!(cause.root(), api::Error::RateLimited { .. });
                let transient = cause.is_auth()
                    || matches!(
                        api::retry::classify(cause.root()),
                        api::retry::Retry::Backoff | api::retry::Retry::Paced
                    );
                let give_up =
                    !cause.is_auth() && !rate_limited && (!transient || w.attempts + 1 >= MAX_TRIES);
                if give_up {
                    tracing::warn!(webhook_id = %crate::http::printable(&w.webhook_id, 100), attempts = w.attempts + 1, error = %error, "a webhook delivery's item could not be fetched; given up: the next listing sync brings it");
                } else if w.attempts == 0 {
                    tracing::warn!(webhook_id = %crate::http::printable(&w.webhook_id, 100), error = %error, "a webhook delivery's item could not be fetched; it stays in the inbox and is tried again");
                }
                let s = Arc::clone(&ctx.store);
                blocking(move || s.apply_failed(w.seq, &error, give_up, Utc::now())).await?;
                if give_up && !transient {
                    continue;
                }
                let wait = match cause.root() {
                    api::Error::RateLimited { retry_after, .. } => {
                        Some(retry_after.unwrap_or(ctx.config.retry.rate_limited_wait))
                    }
                    _ => None,
                };
                return Ok(Some(wait));
            }
            Err(Error::Api { .. }) | Err(Error::Stopped { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// One delivery: what it did to the stored rows.
/// One delivery: fetched, and committed with its mark in one transaction (`store::Delivered`), so
/// a kill never leaves an item stored whose delivery waits to be applied again. Returns the
/// outcome only when nothing was committed (the mark is then the caller's).
async fn apply_one(ctx: &Ctx, stats: &Stats, w: &Waiting) -> Result<Option<Outcome>, Error> {
    let stream = w
        .stream
        .as_deref()
        .and_then(|name| ctx.config.streams.iter().copied().find(|s| s.name == name));
    let (Some(stream), Some(id)) = (stream, w.item_id.as_deref()) else {
        return Ok(Some(Outcome::Ignored));
    };
    let api_error = |cause| Error::Api {
        stream: stream.name,
        cause,
    };
    let fetched = ctx
        .api
        .by_id(stats, stream.path, id, Tries::Once)
        .await
        .map_err(api_error)?;
    let delivered = |outcome: Option<Outcome>, fetched| Delivered {
        seq: w.seq,
        outcome,
        lag_ms: lag_ms(w),
        fetched,
    };
    let commit = match fetched {
        ById::Found(raw) => item_commit(ctx, stream, id, raw, delivered).await?,
        ById::Gone if removes(stream, &w.event_type) => Commit {
            stream: stream.name,
            removals: Some(Removals {
                table: stream.name,
                confirmed: vec![id.to_owned()],
                missed: Vec::new(),
            }),
            delivery: Some(delivered(Some(Outcome::Removed), None)),
            ..Commit::default()
        },
        ById::Gone => return Ok(Some(Outcome::Gone)),
        ById::Unaddressable => return Ok(Some(Outcome::Ignored)),
    };
    ctx.writer.send(commit).await.landed().await?;
    Ok(None)
}

/// From the event's timestamp to now, when the event says when it happened.
fn lag_ms(w: &Waiting) -> Option<i64> {
    w.event_timestamp
        .as_deref()
        .and_then(crate::time::from_iso)
        .map(|t| (Utc::now() - t).num_milliseconds().max(0))
}

/// Whether a 404 after `event_type` marks the item's row removed: a removing event of a scanned
/// stream (whose rows a confirmed removal marks); otherwise the row is left as it is.
fn removes(stream: &'static Stream, event_type: &str) -> bool {
    stream.webhook.is_some_and(|w| w.removing.contains(&event_type)) && stream.mode == Mode::Scan
}

/// The commit of an item as the API has it now, as the listing would store it: the row with its
/// per-parent lists, or the item in quarantine. The store writes nothing of it when the stored
/// row is newer (`Delivered::fetched`).
async fn item_commit(
    ctx: &Ctx,
    stream: &'static Stream,
    id: &str,
    raw: Box<serde_json::value::RawValue>,
    delivered: impl Fn(Option<Outcome>, Option<(String, crate::time::Timestamp)>) -> Delivered,
) -> Result<Commit, Error> {
    let (items, bad) = read_page(stream, std::slice::from_ref(&raw));
    if !bad.is_empty() {
        return Ok(Commit {
            stream: stream.name,
            quarantined: bad,
            delivery: Some(delivered(Some(Outcome::Quarantined), None)),
            ..Commit::default()
        });
    }
    // The answer must be the item asked for: another one stored in its place would leave the
    // asked item unfetched, its delivery marked applied, and its per-parent lists written
    // under a parent that may not be stored (a foreign key that fails the applier).
    if let Some(other) = items.first().filter(|i| i.key != id) {
        return Err(Error::Api {
            stream: stream.name,
            cause: api::Error::WrongItem {
                path: crate::http::printable(&format!("{}/{id}", stream.path), 300),
                got: crate::http::printable(&other.key, 200),
            },
        });
    }
    let fetched = items.first().and_then(|i| Some((i.key.clone(), i.updated_at?)));
    let children = ctx.children(stream);
    let lists = if children.is_empty() {
        Vec::new()
    } else {
        let per_child: Vec<Arc<Stats>> = children.iter().map(|_| Arc::new(Stats::default())).collect();
        let held = ctx.budget.hold();
        let lists = fetch_children(ctx, stream, children, &per_child, id, &held).await;
        held.seal();
        lists?
    };
    Ok(Commit {
        stream: stream.name,
        rows: items.into_iter().map(|i| i.row).collect(),
        children: lists,
        delivery: Some(delivered(None, fetched)),
        ..Commit::default()
    })
}
