//! `GET /v1/bookings/{id}/tickets` → `booking_tickets`: who actually turned up. One row per
//! ticket with its check-in (time, by whom, how), fetched when the booking is new or changed.
//! Required: `id`. The ticket's variant is its first `VARIANT` item's `type_id`.

use serde::Serialize;

use super::read::Fields;
use super::stream::{At, Mode, Parsed, PerParent, Replace, Stream};
use crate::store::Ts;

pub(crate) static STREAM: Stream = Stream {
    name: "booking_tickets",
    path: "tickets",
    scope: "booking.read",
    mode: Mode::PerParent(PerParent {
        parent: &super::bookings::STREAM,
        paged: false,
        replace: Replace::ById,
    }),
    enabled_by_default: false,
    webhook: None,
    parse,
};

#[derive(Debug, Serialize)]
struct Ticket {
    id: String,
    booking_id: String,
    status: Option<String>,
    ticket_variant_id: Option<String>,
    check_in_time: Option<Ts>,
    checked_in_by: Option<String>,
    check_in_method: Option<String>,
    items_json: Option<String>,
    urls_json: Option<String>,
}

fn parse(at: At<'_>, t: Fields<'_>) -> Result<Parsed, String> {
    let id = t.required_str("id")?;
    let items = t.array("items");
    let variant = items
        .iter()
        .map(Fields::of)
        .find(|i| i.str("item_type") == Some("VARIANT"))
        .or_else(|| items.first().map(Fields::of))
        .and_then(|i| i.string("type_id"));
    let check_in = t.obj("check_in");
    let row = Ticket {
        id: id.to_owned(),
        booking_id: at.parent_id.to_owned(),
        status: t.string("status"),
        ticket_variant_id: variant,
        check_in_time: check_in.ts("check_in_time").map(Ts),
        checked_in_by: check_in.string("checked_in_by"),
        check_in_method: check_in.string("method"),
        items_json: t.json("items"),
        urls_json: t.json("urls"),
    };
    Ok(Parsed::new(row, id))
}
