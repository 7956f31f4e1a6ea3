//! `GET /v1/bookings` → `bookings`. Required: `id`, `created_at`, `updated_at` (the walk sorts
//! and resumes by them); everything else is read leniently.

use serde_json::value::RawValue;

use super::{Item, Mode, Stream, customer, item, opt_json, opt_text, row, text, ts};

pub static STREAM: Stream = Stream {
    name: "bookings",
    path: "v1/bookings",
    scope: "booking.read",
    mode: Mode::Incremental,
    enabled_by_default: true,
    parse,
    children: &[],
};

pub fn parse(raw: &RawValue) -> Result<Item, String> {
    item(raw, |b| {
        let id = b.required_str("id")?;
        let created_at = b.required_ts("created_at")?;
        let updated_at = b.required_ts("updated_at")?;
        let mut cols = vec![
            (":status", opt_text(b.str("status"))),
            (":created_at", ts(created_at)),
            (":updated_at", ts(updated_at)),
            (":company_id", opt_text(b.str("company_id"))),
            (":experience_id", opt_text(b.str("experience_id"))),
            (":event_id", opt_text(b.str("event_id"))),
            (":locale", opt_text(b.str("locale"))),
            (":source", opt_text(b.str("source"))),
            (":internal_note", opt_text(b.str("internal_note"))),
            (":metadata_json", opt_json(b.json("metadata"))),
        ];
        customer(&mut cols, b.obj("customer"));
        Ok(Item {
            row: row(STREAM.name, vec![(":id", text(id))], cols, raw),
            key: id.to_owned(),
            created_at: Some(created_at),
            updated_at: Some(updated_at),
        })
    })
}
