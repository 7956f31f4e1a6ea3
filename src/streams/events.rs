//! `GET /v1/events` → `events`. Its `from`/`to` filter the sessions' local start time, not
//! changes, so the stream scans the whole list each run; only `id` is required. The first
//! session is flattened into columns (most events have one); all of them stay in `sessions_json`.
//! On by default: `bookings_enriched` and the example queries take each booking's start time
//! from it, for one request per 100 events a run.

use serde::Serialize;

use super::read::Fields;
use super::stream::{At, Mode, Parsed, Stream, Webhook};
use crate::store::Ts;

pub(crate) static STREAM: Stream = Stream {
    name: "events",
    path: "v1/events",
    scope: "event.read",
    mode: Mode::Scan,
    enabled_by_default: true,
    webhook: Some(Webhook {
        types: &[
            "v1.event.created",
            "v1.event.updated",
            "v1.event.cancelled",
            "v1.event.completed",
            "v1.event.deleted",
        ],
        id_field: "event_id",
        removing: &["v1.event.cancelled", "v1.event.deleted"],
    }),
    parse,
};

#[derive(Debug, Serialize)]
struct Event {
    id: String,
    state: Option<String>,
    visibility: Option<String>,
    experience_id: Option<String>,
    capacity_total: Option<i64>,
    capacity_reserved: Option<i64>,
    session_count: Option<i64>,
    first_session_start: Option<String>,
    first_session_end: Option<String>,
    timezone: Option<String>,
    location_id: Option<String>,
    sessions_json: Option<String>,
    created_at: Option<Ts>,
    updated_at: Option<Ts>,
    metadata_json: Option<String>,
}

fn parse(_: At<'_>, e: Fields<'_>) -> Result<Parsed, String> {
    let id = e.required_str("id")?;
    let sessions = e.array("sessions");
    let first = sessions.first().map(Fields::of);
    let session = |key: &str| first.and_then(|s| s.string(key));
    let capacity = e.obj("capacity");
    let row = Event {
        id: id.to_owned(),
        state: e.string("state"),
        visibility: e.string("visibility"),
        experience_id: e.string("experience_id"),
        capacity_total: capacity.int("total"),
        capacity_reserved: capacity.int("reserved"),
        session_count: e.json("sessions").map(|_| sessions.len() as i64),
        first_session_start: session("start_time"),
        first_session_end: session("end_time"),
        timezone: session("timezone"),
        location_id: session("location_id"),
        sessions_json: e.json("sessions"),
        created_at: e.ts("created_at").map(Ts),
        updated_at: e.ts("updated_at").map(Ts),
        metadata_json: e.json("metadata"),
    };
    Ok(Parsed::new(row, id).walked_by(e.ts("created_at"), e.ts("updated_at")))
}
