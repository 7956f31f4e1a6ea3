//! `GET /v1/orders/{id}/refunds` → `order_refunds`. Required: `id`.

use serde::Serialize;

use super::read::Fields;
use super::columns::{Money};
use super::stream::{At, Mode, Parsed, PerParent, Replace, Stream};
use crate::store::Ts;

pub(crate) static STREAM: Stream = Stream {
    name: "order_refunds",
    path: "refunds",
    scope: "order.read",
    mode: Mode::PerParent(PerParent {
        parent: &super::orders::STREAM,
        paged: false,
        replace: Replace::ById,
    }),
    enabled_by_default: true,
    webhook: None,
    parse,
};

#[derive(Debug, Serialize)]
struct Refund {
    id: String,
    order_id: String,
    status: Option<String>,
    transaction_id: Option<String>,
    created_at: Option<Ts>,
    amount: Money,
}

fn parse(at: At<'_>, r: Fields<'_>) -> Result<Parsed, String> {
    let id = r.required_str("id")?;
    let row = Refund {
        id: id.to_owned(),
        order_id: at.parent_id.to_owned(),
        status: r.string("status"),
        transaction_id: r.string("transaction_id"),
        created_at: r.ts("created_at").map(Ts),
        amount: r.money("amount").into(),
    };
    Ok(Parsed::new(row, id))
}
