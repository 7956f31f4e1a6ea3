//! Issue 9: the optional per-parent streams — ticket variants, booking tickets with their
//! check-ins, information requests and their answers — equal the sandbox's truth after a full
//! sync, after mutations and after SIGKILLs; enabling one later fetches it for every stored
//! parent once; the analysts' views over them return rows.

use understory_sync::config::RawConfig;
use understory_sync::sync::RunStatus;

use crate::cli::{sync_ok, write_config};
use crate::fan_out::{kill_during_the_fan_out, staged};
use crate::support::*;

/// The streams that are off by default.
pub fn optional() -> Vec<&'static str> {
    understory_sync::streams::ALL
        .iter()
        .filter(|s| !s.enabled_by_default)
        .map(|s| s.name)
        .collect()
}

/// `raw` with every stream on.
pub fn with_optional(mut raw: RawConfig) -> RawConfig {
    for s in optional() {
        raw.streams.set(s, true);
    }
    raw
}

fn count(db: &std::path::Path, sql: &str) -> i64 {
    open(db).query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_optional_stream_equals_the_truth_after_a_full_sync_and_after_mutations() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let cfg = config(with_optional(raw_config(&sb, &db)));
    let first = sync(&cfg).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:?}");
    assert_converged(&db, &sb);
    for s in optional() {
        assert!(stream_ran(&db, s), "{s} ran");
    }
    let truth = sb.truth();
    assert!(
        !truth.rows("booking_tickets").is_empty() && !truth.rows("information_request_answers").is_empty()
    );

    // Nothing changed: nothing is fetched per parent, nothing rewritten.
    let before = fingerprint(&db);
    sb.record();
    let second = sync(&cfg).await;
    assert_eq!(second.status, RunStatus::Succeeded);
    assert_eq!(fingerprint(&db), before, "an unchanged run rewrites nothing");
    let per_parent = sb
        .arrivals()
        .iter()
        .filter(|a| a.path.ends_with("/tickets") || a.path.contains("/ticket-variants"))
        .count();
    assert_eq!(
        per_parent, 0,
        "no parent changed, so no per-parent list was fetched"
    );

    // New check-ins, changed answers, changed prices.
    let checked_in = |t: &understory_sandbox::Truth| {
        t.rows("booking_tickets")
            .values()
            .filter(|v| v.get("check_in").is_some_and(|c| !c.is_null()))
            .count()
    };
    let old = sb.truth();
    sb.mutate(3);
    let new = sb.truth();
    assert_ne!(
        checked_in(&old),
        checked_in(&new),
        "the mutation checked tickets in"
    );
    assert_ne!(
        old.rows("information_request_answers"),
        new.rows("information_request_answers"),
        "the mutation changed answers"
    );
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_converged(&db, &sb);
    let stored_check_ins = count(
        &db,
        "SELECT COUNT(*) FROM booking_tickets WHERE check_in_time IS NOT NULL",
    );
    assert_eq!(stored_check_ins as usize, checked_in(&new));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_enabled_later_is_fetched_once_for_every_stored_parent() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let run = sync(&config(raw_config(&sb, &db))).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM booking_tickets"), 0);

    sb.record();
    let cfg = config(with_optional(raw_config(&sb, &db)));
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_converged(&db, &sb);
    let arrivals = sb.arrivals();
    // Distinct paths: on a loaded machine a slow answer may be timed out and asked again.
    let fetched = |leaf: &str| {
        arrivals
            .iter()
            .filter(|a| a.path.ends_with(leaf))
            .map(|a| a.path.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let truth = sb.truth();
    assert_eq!(
        fetched("/tickets"),
        truth.rows("bookings").len(),
        "one request per stored booking"
    );
    assert_eq!(fetched("/ticket-variants"), truth.rows("experiences").len());
    // The order fan-out was not repeated: orders were not re-staged for the new streams.
    assert_eq!(fetched("/line-items"), 0);

    // Once: the next run fetches nothing per parent.
    sb.record();
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    assert_eq!(
        sb.arrivals()
            .iter()
            .filter(|a| a.path.ends_with("/tickets"))
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkills_while_tickets_are_fetched_lose_and_duplicate_nothing() {
    let mut sc = small();
    sc.data.bookings = 1_500;
    let sb = start(sc).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = optional()
        .iter()
        .map(|s| format!("{s} = true"))
        .collect::<Vec<_>>()
        .join("\n");
    let cfg = write_config(dir.path(), &sb, &extra);
    let db = dir.path().join("sync.sqlite");
    let kills = kill_during_the_fan_out(&sb, &cfg, &db, "bookings", "400").await;
    assert!(kills >= 2, "kills landed during the fan-out: {kills}");
    sync_ok(&cfg);
    assert_converged(&db, &sb);
    assert_eq!(staged(&db, "bookings"), 0);
    // A booking is never visible without its tickets.
    let bare = count(
        &db,
        "SELECT COUNT(*) FROM bookings b WHERE NOT EXISTS (SELECT 1 FROM booking_tickets t WHERE t.booking_id = b.id)",
    );
    assert_eq!(bare, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_views_and_their_example_queries_return_rows() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let cfg = config(with_optional(raw_config(&sb, &db)));
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    sb.mutate(2);
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    let c = open(&db);
    // Every ticket has its booking, event start, experience and variant name.
    let (tickets, named, checked_in, with_start): (i64, i64, i64, i64) = c
        .query_row(
            "SELECT COUNT(*), COUNT(ticket_variant_name), SUM(checked_in), COUNT(event_start_local) FROM tickets_with_check_in",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(tickets as usize, sb.truth().rows("booking_tickets").len());
    assert_eq!(named, tickets, "every ticket's variant has a name");
    assert_eq!(with_start, tickets, "every ticket's event has a start");
    assert!(
        checked_in > 0 && checked_in < tickets,
        "{checked_in} of {tickets}"
    );
    let (lines, named): (i64, i64) = c
        .query_row(
            "SELECT COUNT(*), COUNT(ticket_variant_name) FROM line_items_named WHERE product_type IN ('TICKET', 'TICKET_ADDON')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(lines > 0);
    assert_eq!(named, lines, "every ticket and add-on line names its variant");
}
