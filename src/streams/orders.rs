//! `GET /v1/orders` → `orders`. Required: `id`, `created_at` and `updated_at`. `origin` may lack
//! either key. Line items, transactions and refunds come from per-order endpoints, each its own
//! stream (`order_line_items`, `order_transactions`, `order_refunds`).

use serde::Serialize;

use super::read::Fields;
use super::columns::{Customer, Money};
use super::stream::{At, Mode, Parsed, Stream};
use crate::store::Ts;

pub(crate) static STREAM: Stream = Stream {
    name: "orders",
    path: "v1/orders",
    scope: "order.read",
    mode: Mode::Incremental,
    enabled_by_default: true,
    webhook: None,
    parse,
};

#[derive(Debug, Serialize)]
struct Order {
    id: String,
    number: Option<String>,
    status: Option<String>,
    payment_status: Option<String>,
    created_at: Ts,
    updated_at: Ts,
    origin_type: Option<String>,
    origin_id: Option<String>,
    metadata_json: Option<String>,
    customer: Customer,
    discount: Money,
    vat_amount: Money,
    amount: Money,
}

fn parse(_: At<'_>, o: Fields<'_>) -> Result<Parsed, String> {
    let id = o.required_str("id")?;
    let created_at = o.required_ts("created_at")?;
    let updated_at = o.required_ts("updated_at")?;
    let origin = o.obj("origin");
    let totals = o.obj("totals");
    let row = Order {
        id: id.to_owned(),
        number: o.string("number"),
        status: o.string("status"),
        payment_status: o.string("payment_status"),
        created_at: Ts(created_at),
        updated_at: Ts(updated_at),
        origin_type: origin.string("type"),
        origin_id: origin.string("id"),
        metadata_json: o.json("metadata"),
        customer: Customer::read(o.obj("customer")),
        discount: totals.money("discount").into(),
        vat_amount: totals.money("vat_amount").into(),
        amount: totals.money("amount").into(),
    };
    Ok(Parsed::new(row, id).walked_by(Some(created_at), Some(updated_at)))
}
