//! `GET /v1/events` → `events`. Its `from`/`to` filter the sessions' local start time, not
//! changes, so the stream scans the whole list each run; only `id` is required.

use serde_json::value::RawValue;

use super::read::Fields;
use super::{Item, Mode, Stream, item, opt_int, opt_json, opt_text, opt_ts, row, text};

pub static STREAM: Stream = Stream {
    name: "events",
    path: "v1/events",
    scope: "event.read",
    mode: Mode::Scan,
    enabled_by_default: false,
    parse,
    children: &[],
};

pub fn parse(raw: &RawValue) -> Result<Item, String> {
    item(raw, |e| {
        let id = e.required_str("id")?;
        let sessions = e.array("sessions");
        let first = sessions.first().map(Fields::of);
        let capacity = e.obj("capacity");
        let cols = vec![
            (":state", opt_text(e.str("state"))),
            (":visibility", opt_text(e.str("visibility"))),
            (":experience_id", opt_text(e.str("experience_id"))),
            (":capacity_total", opt_int(capacity.int("total"))),
            (":capacity_reserved", opt_int(capacity.int("reserved"))),
            (
                ":session_count",
                opt_int(e.json("sessions").map(|_| sessions.len() as i64)),
            ),
            (
                ":first_session_start",
                opt_text(first.and_then(|s| s.str("start_time"))),
            ),
            (
                ":first_session_end",
                opt_text(first.and_then(|s| s.str("end_time"))),
            ),
            (":timezone", opt_text(first.and_then(|s| s.str("timezone")))),
            (":location_id", opt_text(first.and_then(|s| s.str("location_id")))),
            (":sessions_json", opt_json(e.json("sessions"))),
            (":created_at", opt_ts(e.ts("created_at"))),
            (":updated_at", opt_ts(e.ts("updated_at"))),
            (":metadata_json", opt_json(e.json("metadata"))),
        ];
        Ok(Item {
            row: row(STREAM.name, vec![(":id", text(id))], cols, raw),
            key: id.to_owned(),
            created_at: e.ts("created_at"),
            updated_at: e.ts("updated_at"),
        })
    })
}
