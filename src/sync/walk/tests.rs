use super::*;

#[test]
fn a_cursor_handed_back_twice_in_a_pass_is_a_loop() {
    let (mut w, _) = Walk::start(Mode::Scan, Checkpoint::default(), now(), &SETTINGS);
    w.page(&[], Some("a".into()), now()).unwrap();
    w.committed(now());
    w.page(&[], Some("b".into()), now()).unwrap();
    w.committed(now());
    assert_eq!(w.page(&[], Some("a".into()), now()), Err(Looping));
    assert_eq!(
        w.page(&[], Some("b".into()), now()),
        Err(Looping),
        "the same page again"
    );
    // Nothing changed: the pass goes on from `b`.
    assert!(w.query(100).params().contains(&("cursor", "b".to_owned())));
    assert!(w.page(&[], Some("c".into()), now()).is_ok());
}
use crate::store::Row;

pub(super) fn t(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

pub(super) fn item(created: &str, updated: &str) -> Item {
    Item {
        row: Row {
            table: "bookings",
            record: Box::new(()),
            raw_json: "{}".into(),
            item_key: "k".into(),
        },
        key: "k".into(),
        created_at: Some(t(created)),
        updated_at: Some(t(updated)),
    }
}

const TTL: Duration = Duration::from_secs(300);
const OVERLAP: Duration = Duration::from_secs(60);
pub(super) const SETTINGS: Settings = Settings {
    cursor_ttl: TTL,
    overlap: OVERLAP,
    max_skew: Duration::from_secs(86_400),
};

pub(super) fn now() -> Timestamp {
    t("2026-06-01T12:00:00Z")
}

#[test]
fn a_first_walk_bootstraps_then_catches_up_incrementally() {
    let (mut w, start) = Walk::start(Mode::Incremental, Checkpoint::default(), now(), &SETTINGS);
    assert_eq!(start, Start::Fresh);
    assert_eq!(w.pass_kind(), PassKind::Bootstrap);
    assert!(w.candidate_query().is_some());
    w.set_candidate(Some(t("2026-05-31T00:00:00Z")), now());
    assert!(w.candidate_query().is_none());
    assert!(
        w.query(100)
            .params()
            .contains(&("sort", "+created_at".to_owned()))
    );

    let c = w
        .page(
            &[item("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")],
            Some("n1".into()),
            now(),
        )
        .unwrap();
    assert!(!c.done && c.checkpoint.cursor.as_deref() == Some("n1"));
    assert_eq!(
        c.checkpoint.high_water_mark, None,
        "the mark moves only when the pass completes"
    );
    assert_eq!(w.committed(now()), Next::Fetch);
    assert!(w.query(100).params().contains(&("cursor", "n1".to_owned())));

    let c = w
        .page(
            &[item("2026-01-02T00:00:00Z", "2026-02-02T00:00:00Z")],
            None,
            now(),
        )
        .unwrap();
    assert!(c.done && c.checkpoint.completed);
    assert_eq!(c.checkpoint.high_water_mark, Some(t("2026-05-31T00:00:00Z")));
    assert_eq!(w.committed(now()), Next::CatchUp);
    assert_eq!(w.pass_kind(), PassKind::Incremental);
    assert!(
        w.query(100)
            .params()
            .contains(&("sort", "-updated_at".to_owned()))
    );
}

#[test]
fn a_bootstrap_whose_probe_read_nothing_takes_its_mark_from_its_first_page() {
    let (mut w, _) = Walk::start(Mode::Incremental, Checkpoint::default(), now(), &SETTINGS);
    w.set_candidate(None, now());
    assert!(w.candidate_query().is_some(), "still no candidate");
    w.page(
        &[
            item("2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"),
            item("2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z"),
        ],
        Some("n1".into()),
        now(),
    )
    .unwrap();
    assert_eq!(w.committed(now()), Next::Fetch);
    let c = w
        .page(
            &[item("2026-01-03T00:00:00Z", "2026-05-01T00:00:00Z")],
            None,
            now(),
        )
        .unwrap();
    assert!(c.done);
    assert_eq!(
        c.checkpoint.high_water_mark,
        Some(t("2026-03-01T00:00:00Z")),
        "the first page's newest update, not a later page's"
    );
    assert_eq!(w.committed(now()), Next::CatchUp);
}

#[test]
fn an_incremental_pass_stops_below_the_floor_and_adopts_the_newest_update() {
    let cp = Checkpoint {
        high_water_mark: Some(t("2026-05-01T00:00:00Z")),
        ..Checkpoint::default()
    };
    let (mut w, _) = Walk::start(Mode::Incremental, cp, now(), &SETTINGS);
    // Within the overlap: not yet below the floor.
    let c = w
        .page(
            &[
                item("2026-01-01T00:00:00Z", "2026-05-20T00:00:00Z"),
                item("2026-01-01T00:00:00Z", "2026-04-30T23:59:30Z"),
            ],
            Some("n".into()),
            now(),
        )
        .unwrap();
    assert!(!c.done);
    w.committed(now());
    let c = w
        .page(
            &[item("2026-01-01T00:00:00Z", "2026-04-30T23:58:00Z")],
            Some("n2".into()),
            now(),
        )
        .unwrap();
    assert!(c.done, "an item below the floor ends the pass");
    assert_eq!(c.checkpoint.high_water_mark, Some(t("2026-05-20T00:00:00Z")));
    assert_eq!(w.committed(now()), Next::Done);
}

#[test]
fn a_young_cursor_resumes_and_a_stale_one_restarts_from_progress() {
    let pass = Pass {
        kind: PassKind::Bootstrap,
        started_at: now(),
        candidate: Some(t("2026-05-01T00:00:00Z")),
        from: None,
        progress: Some(t("2026-03-01T00:00:00Z")),
        pages: 7,
        rows: 700,
    };
    let cp = |saved: &str| Checkpoint {
        cursor: Some("c".into()),
        cursor_saved_at: Some(t(saved)),
        pass: Some(pass.to_row()),
        ..Checkpoint::default()
    };
    let (w, start) = Walk::start(Mode::Incremental, cp("2026-06-01T11:59:00Z"), now(), &SETTINGS);
    assert_eq!(start, Start::Resumed { pages_done: 7 });
    assert!(w.query(100).params().contains(&("cursor", "c".to_owned())));
    assert!(w.candidate_query().is_none(), "the candidate was kept");

    let (w, start) = Walk::start(Mode::Incremental, cp("2026-06-01T11:00:00Z"), now(), &SETTINGS);
    assert_eq!(start, Start::StaleCursor);
    let q = w.query(100).params();
    assert!(!q.iter().any(|(k, _)| *k == "cursor"));
    assert!(
        q.contains(&("from", "2026-03-01T00:00:00.000Z".to_owned())),
        "{q:?}"
    );
}

#[test]
fn a_refused_cursor_restarts_once_per_progress() {
    let (mut w, _) = Walk::start(Mode::Scan, Checkpoint::default(), now(), &SETTINGS);
    assert!(
        !w.refused(),
        "no cursor: the refusal is the API's verdict on the query"
    );
    w.page(
        &[item("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")],
        Some("n".into()),
        now(),
    )
    .unwrap();
    w.committed(now());
    assert!(w.refused(), "progress since: restart");
    assert!(!w.query(100).params().iter().any(|(k, _)| *k == "cursor"));
    w.page(&[], Some("n".into()), now()).unwrap();
    w.committed(now());
    assert!(w.refused(), "one more page of progress: restart again");
    assert!(!w.refused(), "no cursor now");
}

#[test]
fn a_resumed_scan_is_followed_by_a_whole_one_that_confirms_removals() {
    let pass = Pass {
        kind: PassKind::Scan,
        started_at: now(),
        candidate: None,
        from: None,
        progress: None,
        pages: 3,
        rows: 300,
    };
    let cp = Checkpoint {
        cursor: Some("c".into()),
        cursor_saved_at: Some(now()),
        pass: Some(pass.to_row()),
        ..Checkpoint::default()
    };
    let (mut w, _) = Walk::start(Mode::Scan, cp, now(), &SETTINGS);
    let c = w.page(&[], None, now()).unwrap();
    assert!(c.done && !c.reset_seen, "a resumed scan keeps what it saw");
    assert!(c.sweep_quarantine_before.is_some());
    assert_eq!(w.committed(now()), Next::Rescan);
    let c = w.page(&[], Some("n".into()), now()).unwrap();
    assert!(c.reset_seen, "the whole scan starts its list afresh");
    w.committed(now());
    let c = w.page(&[], None, now()).unwrap();
    assert!(!c.reset_seen);
    assert_eq!(w.committed(now()), Next::ConfirmRemovals);
}

#[test]
fn a_checkpointed_pass_of_a_kind_this_version_does_not_know_starts_anew() {
    let mut row = Pass {
        kind: PassKind::Bootstrap,
        started_at: now(),
        candidate: None,
        from: None,
        progress: None,
        pages: 7,
        rows: 700,
    }
    .to_row();
    row.kind = "sideways".into();
    let cp = Checkpoint {
        cursor: Some("c".into()),
        cursor_saved_at: Some(now()),
        pass: Some(row),
        ..Checkpoint::default()
    };
    let (w, start) = Walk::start(Mode::Incremental, cp, now(), &SETTINGS);
    assert_eq!(start, Start::Fresh, "even with a young cursor");
    assert!(!w.query(100).params().iter().any(|(k, _)| *k == "cursor"));
    assert_eq!(
        w.pass_kind(),
        PassKind::Bootstrap,
        "no high-water mark: a first load"
    );
}
