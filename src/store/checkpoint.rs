//! A stream's checkpoint, the `sync_state` row.
//!
//! Understory's cursors are short-lived and must not be kept across jobs (`docs/understory-api.md` §1.1), so the
//! checkpoint holds two things: the in-flight `cursor`, used only to resume a crashed pass while
//! it is younger than `sync.cursor_ttl_secs`, and the `high_water_mark`, the newest `updated_at`
//! a completed pass is known to cover, which is what incremental runs rely on.

use rusqlite::{Connection, OptionalExtension};

use super::statements;
use crate::time::{Timestamp, iso};

/// A pass under way as `sync_state` keeps it: what the walk needs to go on after a crash. What
/// the fields mean, and the kinds of pass there are, is the walk's (`sync::walk::Pass`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PassRow {
    /// The pass's kind as the walk wrote it (`bootstrap`, `incremental` or `scan`); the walk
    /// starts a new pass over a kind it does not know.
    pub(crate) kind: String,
    pub(crate) started_at: Timestamp,
    pub(crate) candidate: Option<Timestamp>,
    pub(crate) from: Option<Timestamp>,
    pub(crate) progress: Option<Timestamp>,
    pub(crate) pages: i64,
    pub(crate) rows: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub(crate) high_water_mark: Option<Timestamp>,
    pub(crate) cursor: Option<String>,
    pub(crate) cursor_saved_at: Option<Timestamp>,
    pub(crate) pass: Option<PassRow>,
    /// Set on the commit that completes a pass, to stamp `last_completed_at`.
    pub(crate) completed: bool,
}

fn parse(s: Option<String>) -> Option<Timestamp> {
    s.and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.to_utc())
}

pub(super) fn load(conn: &Connection, stream: &str) -> rusqlite::Result<Checkpoint> {
    conn.prepare_cached(statements::get("sync_state", "load"))?
        .query_row(&[(":stream", stream)], |r| {
            let kind: Option<String> = r.get(3)?;
            let pass = match (kind, parse(r.get(4)?)) {
                (Some(kind), Some(started_at)) => Some(PassRow {
                    kind,
                    started_at,
                    candidate: parse(r.get(5)?),
                    from: parse(r.get(6)?),
                    progress: parse(r.get(7)?),
                    pages: r.get(8)?,
                    rows: r.get(9)?,
                }),
                _ => None,
            };
            Ok(Checkpoint {
                high_water_mark: parse(r.get(0)?),
                cursor: r.get(1)?,
                cursor_saved_at: parse(r.get(2)?),
                pass,
                completed: false,
            })
        })
        .optional()
        .map(Option::unwrap_or_default)
}

pub(super) fn save(conn: &Connection, stream: &str, c: &Checkpoint, now: &str) -> rusqlite::Result<()> {
    let t = |x: Option<Timestamp>| x.map(iso);
    let p = c.pass.as_ref();
    conn.prepare_cached(statements::get("sync_state", "save"))?
        .execute(rusqlite::named_params! {
            ":stream": stream,
            ":high_water_mark": t(c.high_water_mark),
            ":cursor": c.cursor,
            ":cursor_saved_at": t(c.cursor_saved_at),
            ":pass_kind": p.map(|p| p.kind.as_str()),
            ":pass_started_at": t(p.map(|p| p.started_at)),
            ":pass_candidate": t(p.and_then(|p| p.candidate)),
            ":pass_from": t(p.and_then(|p| p.from)),
            ":pass_progress": t(p.and_then(|p| p.progress)),
            ":pass_pages": p.map_or(0, |p| p.pages),
            ":pass_rows": p.map_or(0, |p| p.rows),
            ":last_completed_at": c.completed.then_some(now),
            ":now": now,
        })?;
    Ok(())
}
