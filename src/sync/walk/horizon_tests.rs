//! The walk and the clocks: stamps beyond the horizon, the marks they would have set, and
//! their repair.

use super::tests::{SETTINGS, item, now, t};
use super::*;

fn incremental_from(mark: &str) -> Walk {
    let cp = Checkpoint {
        high_water_mark: Some(t(mark)),
        ..Checkpoint::default()
    };
    Walk::start(Mode::Incremental, cp, now(), &SETTINGS).0
}

#[test]
fn an_item_stamped_beyond_the_horizon_is_counted_but_never_the_mark() {
    let mut w = incremental_from("2026-06-01T10:00:00Z");
    assert_eq!(w.repairing(), None);
    let page = [
        item("2026-05-01T00:00:00Z", "9999-12-31T23:59:59Z"),
        item("2026-06-01T11:00:00Z", "2026-06-01T11:30:00Z"),
        item("2026-05-01T00:00:00Z", "2026-06-01T09:00:00Z"),
    ];
    let c = w.page(&page, None, now()).unwrap();
    assert!(c.done, "the page reached the floor");
    assert_eq!(c.future_dated, 1);
    assert_eq!(c.checkpoint.high_water_mark, Some(t("2026-06-01T11:30:00Z")));
}

#[test]
fn the_horizon_is_the_later_clock_plus_the_skew() {
    let mut w = incremental_from("2026-06-01T10:00:00Z");
    assert_eq!(w.horizon(now()), t("2026-06-02T12:00:00Z"));
    // The API's clock runs two days ahead of ours: its recent stamps are believed (its say is
    // bounded to a skew ahead of ours, so the horizon is two skews ahead).
    w.api_clock(Some(t("2026-06-03T12:00:00Z")));
    assert_eq!(w.horizon(now()), t("2026-06-03T12:00:00Z"));
    let c = w
        .page(
            &[item("2026-06-03T11:00:00Z", "2026-06-03T11:00:00Z")],
            None,
            now(),
        )
        .unwrap();
    assert_eq!(
        (c.future_dated, c.checkpoint.high_water_mark),
        (0, Some(t("2026-06-03T11:00:00Z")))
    );
}

#[test]
fn items_at_the_mark_and_within_the_overlap_are_read_and_do_not_end_the_pass() {
    let mut w = incremental_from("2026-06-01T10:00:00Z");
    // Stamped exactly at the mark, and 59 s under it (the overlap is 60 s): not the floor yet.
    let page = [
        item("2026-05-01T00:00:00Z", "2026-06-01T10:00:00Z"),
        item("2026-05-01T00:00:00Z", "2026-06-01T09:59:01Z"),
    ];
    let c = w.page(&page, Some("n".into()), now()).unwrap();
    assert!(!c.done, "the pass goes on below the mark, within the overlap");
    w.committed(now());
    let c = w
        .page(
            &[item("2026-05-01T00:00:00Z", "2026-06-01T09:58:59Z")],
            Some("m".into()),
            now(),
        )
        .unwrap();
    assert!(c.done, "below the floor");
    assert_eq!(c.checkpoint.high_water_mark, Some(t("2026-06-01T10:00:00Z")));
}

#[test]
fn a_mark_beyond_the_horizon_is_repaired_by_reading_the_whole_list() {
    let mut w = incremental_from("9999-12-31T23:59:59Z");
    assert_eq!(
        w.repairing(),
        None,
        "judged on the first page, with the API's clock"
    );
    assert_eq!(w.pass_kind(), PassKind::Incremental);
    w.api_clock(Some(now()));
    // Far below the old floor, and the pass goes on: the mark said nothing of where to stop.
    let c = w
        .page(
            &[item("2026-01-01T00:00:00Z", "2026-05-01T00:00:00Z")],
            Some("n".into()),
            now(),
        )
        .unwrap();
    assert_eq!(c.repair_began, Some(t("9999-12-31T23:59:59Z")));
    assert_eq!(w.repairing(), c.repair_began);
    assert!(!c.done);
    assert_eq!(
        c.checkpoint.high_water_mark,
        Some(t("9999-12-31T23:59:59Z")),
        "kept until the repair completes"
    );
    w.committed(now());
    let c = w
        .page(
            &[item("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")],
            None,
            now(),
        )
        .unwrap();
    assert!(c.done);
    assert_eq!(
        c.checkpoint.high_water_mark,
        Some(t("2026-05-01T00:00:00Z")),
        "the newest believable update replaces the mark"
    );
    assert_eq!(w.committed(now()), Next::Done);
    assert_eq!(w.repairing(), None);
}

#[test]
fn a_checkpointed_pass_forgets_stamps_beyond_the_horizon() {
    let pass = Pass {
        kind: PassKind::Bootstrap,
        started_at: t("2026-06-01T11:00:00Z"),
        candidate: Some(t("9999-12-31T23:59:59Z")),
        from: Some(t("9999-01-01T00:00:00Z")),
        progress: Some(t("9999-01-01T00:00:00Z")),
        pages: 3,
        rows: 300,
    };
    let cp = Checkpoint {
        cursor: Some("c".into()),
        cursor_saved_at: Some(t("2026-06-01T11:00:00Z")),
        pass: Some(pass.to_row()),
        ..Checkpoint::default()
    };
    let (w, start) = Walk::start(Mode::Incremental, cp, now(), &SETTINGS);
    assert_eq!(start, Start::StaleCursor);
    assert!(w.candidate_query().is_some(), "the candidate is asked for again");
    assert!(
        !w.query(100).params().iter().any(|(k, _)| *k == "from"),
        "no resume point in the future"
    );
}

/// A mark the walk believed with the API's clock ahead of ours is judged again with that clock
/// on the next run's first page, not by our clock alone at its start: an API legitimately
/// ahead would otherwise cost a whole, floorless read of the list on every run.
#[test]
fn a_mark_the_walk_believed_is_not_repaired_by_the_next_run() {
    let mut w = incremental_from("2026-06-01T10:00:00Z");
    w.api_clock(Some(t("2026-06-03T12:00:00Z")));
    let c = w
        .page(
            &[item("2026-06-03T11:00:00Z", "2026-06-03T11:00:00Z")],
            None,
            now(),
        )
        .unwrap();
    assert_eq!(c.checkpoint.high_water_mark, Some(t("2026-06-03T11:00:00Z")));
    let later = now() + chrono::Duration::minutes(10);
    let (mut next, _) = Walk::start(Mode::Incremental, c.checkpoint, later, &SETTINGS);
    next.api_clock(Some(t("2026-06-03T12:10:00Z")));
    let c = next
        .page(
            &[item("2026-05-01T00:00:00Z", "2026-06-01T09:00:00Z")],
            Some("n".into()),
            later,
        )
        .unwrap();
    assert_eq!(
        c.repair_began, None,
        "the next run repairs a mark its walk believed"
    );
    assert!(c.done, "an ordinary incremental pass: it stops at its floor");
}

#[test]
fn a_first_load_stops_at_a_page_older_than_what_it_crawled_past() {
    let (mut w, _) = Walk::start(Mode::Incremental, Checkpoint::default(), now(), &SETTINGS);
    w.set_candidate(Some(t("2026-05-31T00:00:00Z")), now());
    for (n, created) in ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]
        .iter()
        .enumerate()
    {
        w.page(&[item(created, created)], Some(format!("c{n}")), now())
            .unwrap();
        w.committed(now());
    }
    // The same day as the crawl's position is no loop (items share a second); older is.
    assert!(
        w.page(
            &[item("2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z")],
            Some("c2".into()),
            now()
        )
        .is_ok()
    );
    w.committed(now());
    assert_eq!(
        w.page(
            &[item("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")],
            Some("c3".into()),
            now()
        ),
        Err(Looping),
        "a cycle of pages back to the crawl's start"
    );
}

/// A first load whose every item is stamped beyond the horizon still completes, with the time
/// it began as its mark: without one every later run would be a first load again.
#[test]
fn a_first_load_of_only_future_items_still_completes_the_first_load() {
    let (mut w, _) = Walk::start(Mode::Incremental, Checkpoint::default(), now(), &SETTINGS);
    w.set_candidate(None, now());
    let c = w
        .page(
            &[item("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z")],
            None,
            now(),
        )
        .unwrap();
    assert!(c.done);
    assert!(
        !first_load(Mode::Incremental, &c.checkpoint),
        "the next run is a first load again: {:?}",
        c.checkpoint.high_water_mark
    );
    assert_eq!(c.checkpoint.high_water_mark, Some(now()), "the pass began now");
}
