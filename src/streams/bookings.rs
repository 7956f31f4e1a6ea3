//! `GET /v1/bookings` → `bookings`. Required: `id`, `created_at`, `updated_at` (the walk sorts
//! and resumes by them); everything else is read leniently.

use serde::Serialize;

use super::read::Fields;
use super::columns::{Customer};
use super::stream::{At, Mode, Parsed, Stream, Webhook};
use crate::store::Ts;

pub(crate) static STREAM: Stream = Stream {
    name: "bookings",
    path: "v1/bookings",
    scope: "booking.read",
    mode: Mode::Incremental,
    enabled_by_default: true,
    webhook: Some(Webhook {
        types: &["v1.booking.created", "v1.booking.updated", "v1.booking.cancelled"],
        id_field: "booking_id",
        removing: &["v1.booking.cancelled"],
    }),
    parse,
};

#[derive(Debug, Serialize)]
struct Booking {
    id: String,
    status: Option<String>,
    created_at: Ts,
    updated_at: Ts,
    company_id: Option<String>,
    experience_id: Option<String>,
    event_id: Option<String>,
    locale: Option<String>,
    source: Option<String>,
    internal_note: Option<String>,
    customer: Customer,
    metadata_json: Option<String>,
}

fn parse(_: At<'_>, b: Fields<'_>) -> Result<Parsed, String> {
    let id = b.required_str("id")?;
    let created_at = b.required_ts("created_at")?;
    let updated_at = b.required_ts("updated_at")?;
    let row = Booking {
        id: id.to_owned(),
        status: b.string("status"),
        created_at: Ts(created_at),
        updated_at: Ts(updated_at),
        company_id: b.string("company_id"),
        experience_id: b.string("experience_id"),
        event_id: b.string("event_id"),
        locale: b.string("locale"),
        source: b.string("source"),
        internal_note: b.string("internal_note"),
        customer: Customer::read(b.obj("customer")),
        metadata_json: b.json("metadata"),
    };
    Ok(Parsed::new(row, id).walked_by(Some(created_at), Some(updated_at)))
}
