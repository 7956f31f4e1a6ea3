//! `GET /v1/experiences/{id}/ticket-variants` → `ticket_variants`: what each ticket type is
//! called and costs, behind a line item's `product_id`. Paged like the top-level lists and named
//! in `api.accept_language`. Required: `id`. Add-on variants stay in `add_on_variants_json`
//! (the `ticket_variant_names` view lists them beside the main variants).

use serde::Serialize;

use super::read::Fields;
use super::columns::{Money};
use super::stream::{At, Mode, Parsed, PerParent, Replace, Stream};

pub(crate) static STREAM: Stream = Stream {
    name: "ticket_variants",
    path: "ticket-variants",
    scope: "experience.read",
    mode: Mode::PerParent(PerParent {
        parent: &super::experiences::STREAM,
        paged: true,
        replace: Replace::ById,
    }),
    enabled_by_default: false,
    webhook: None,
    parse,
};

#[derive(Debug, Serialize)]
struct TicketVariant {
    id: String,
    experience_id: String,
    name: Option<String>,
    description: Option<String>,
    add_on_variants_json: Option<String>,
    price: Money,
    vat_amount: Money,
}

fn parse(at: At<'_>, v: Fields<'_>) -> Result<Parsed, String> {
    let id = v.required_str("id")?;
    let row = TicketVariant {
        id: id.to_owned(),
        experience_id: at.parent_id.to_owned(),
        name: v.string("name"),
        description: v.string("description"),
        add_on_variants_json: v.json("add_on_variants"),
        price: v.money("price").into(),
        vat_amount: v.money("vat_amount").into(),
    };
    Ok(Parsed::new(row, id))
}
