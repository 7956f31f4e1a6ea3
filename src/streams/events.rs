//! `GET /v1/events` → `events`. Its `from`/`to` filter the sessions' local start time, not
//! changes, so the stream scans the whole list each run.

use rusqlite::types::Value;
use serde_json::value::RawValue;

use super::{Item, json, opt_text, row, text, ts, typed};
use crate::api::types::Event;
use crate::store::Table;

pub fn parse(raw: &RawValue) -> Result<Item, String> {
    let e: Event = typed(raw)?;
    let first = e.sessions.first();
    let cols = vec![
        (":state", text(&e.state)),
        (":visibility", text(&e.visibility)),
        (":experience_id", text(&e.experience_id)),
        (":capacity_total", Value::Integer(e.capacity.total)),
        (":capacity_reserved", Value::Integer(e.capacity.reserved)),
        (":session_count", Value::Integer(e.sessions.len() as i64)),
        (
            ":first_session_start",
            opt_text(first.map(|s| s.start_time.as_str())),
        ),
        (":first_session_end", opt_text(first.map(|s| s.end_time.as_str()))),
        (":timezone", opt_text(first.map(|s| s.timezone.as_str()))),
        (":location_id", opt_text(first.map(|s| s.location_id.as_str()))),
        (":sessions_json", json(Some(&e.sessions))),
        (":created_at", ts(e.created_at)),
        (":updated_at", ts(e.updated_at)),
        (":metadata_json", json(e.metadata.as_ref())),
    ];
    Ok(Item {
        row: row(Table::Events, vec![(":id", text(&e.id))], cols, raw),
        key: e.id,
        created_at: Some(e.created_at),
        updated_at: Some(e.updated_at),
    })
}
