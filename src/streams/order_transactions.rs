//! `GET /v1/orders/{id}/transactions` → `order_transactions`. Required: `id`.

use serde::Serialize;

use super::read::Fields;
use super::columns::{Money};
use super::stream::{At, Mode, Parsed, PerParent, Replace, Stream};
use crate::store::Ts;

pub(crate) static STREAM: Stream = Stream {
    name: "order_transactions",
    path: "transactions",
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
struct Transaction {
    id: String,
    order_id: String,
    status: Option<String>,
    provider: Option<String>,
    created_at: Option<Ts>,
    details_type: Option<String>,
    gift_card_id: Option<String>,
    amount: Money,
}

fn parse(at: At<'_>, t: Fields<'_>) -> Result<Parsed, String> {
    let id = t.required_str("id")?;
    let details = t.obj("details");
    let row = Transaction {
        id: id.to_owned(),
        order_id: at.parent_id.to_owned(),
        status: t.string("status"),
        provider: t.string("provider"),
        created_at: t.ts("created_at").map(Ts),
        details_type: details.string("type"),
        gift_card_id: details.string("gift_card_id"),
        amount: t.money("amount").into(),
    };
    Ok(Parsed::new(row, id))
}
