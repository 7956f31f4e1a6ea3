//! `GET /v1/bookings` → `bookings`.

use serde_json::value::RawValue;

use super::{Item, customer, json, opt_text, row, text, ts, typed};
use crate::api::types::Booking;
use crate::store::Table;

pub fn parse(raw: &RawValue) -> Result<Item, String> {
    let b: Booking = typed(raw)?;
    let mut cols = vec![
        (":status", text(&b.status)),
        (":created_at", ts(b.created_at)),
        (":updated_at", ts(b.updated_at)),
        (":company_id", text(&b.company_id)),
        (":experience_id", text(&b.experience_id)),
        (":event_id", text(&b.event_id)),
        (":locale", text(&b.locale)),
        (":source", opt_text(b.source.as_deref())),
        (":internal_note", opt_text(b.internal_note.as_deref())),
        (":metadata_json", json(b.metadata.as_ref())),
    ];
    customer(&mut cols, &b.customer);
    Ok(Item {
        row: row(Table::Bookings, vec![(":id", text(&b.id))], cols, raw),
        key: b.id,
        created_at: Some(b.created_at),
        updated_at: Some(b.updated_at),
    })
}
