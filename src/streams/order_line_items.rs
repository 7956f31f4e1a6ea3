//! `GET /v1/orders/{id}/line-items` → `order_line_items`. Line items have no id: they are keyed
//! by their position in the order's list and require nothing. A discount comes as the docs'
//! singular `discount` or as `discounts[]` (MindCloud's capture), whose amounts are summed and
//! codes joined.

use serde::Serialize;

use super::read::{self, Fields};
use super::columns::{Money};
use super::stream::{At, Mode, Parsed, PerParent, Replace, Stream};

pub(crate) static STREAM: Stream = Stream {
    name: "order_line_items",
    path: "line-items",
    scope: "order.read",
    mode: Mode::PerParent(PerParent {
        parent: &super::orders::STREAM,
        paged: false,
        replace: Replace::ByPosition,
    }),
    enabled_by_default: true,
    webhook: None,
    parse,
};

#[derive(Debug, Serialize)]
struct LineItem {
    order_id: String,
    position: i64,
    quantity: Option<i64>,
    product_type: Option<String>,
    product_id: Option<String>,
    details_type: Option<String>,
    experience_id: Option<String>,
    ticket_id: Option<String>,
    gift_card_id: Option<String>,
    discount_code: Option<String>,
    unit_price: Money,
    unit_vat_amount: Money,
    discount: Money,
}

fn parse(at: At<'_>, l: Fields<'_>) -> Result<Parsed, String> {
    let details = l.obj("details");
    let (discount, discount_code) = discount(l);
    let row = LineItem {
        order_id: at.parent_id.to_owned(),
        position: at.position as i64,
        quantity: l.int("quantity"),
        product_type: l.string("product_type"),
        product_id: l.string("product_id"),
        details_type: details.string("type"),
        experience_id: details.string("experience_id"),
        ticket_id: details.string("ticket_id"),
        gift_card_id: details.string("gift_card_id"),
        discount_code,
        unit_price: l.money("unit_price").into(),
        unit_vat_amount: l.money("unit_vat_amount").into(),
        discount: discount.into(),
    };
    Ok(Parsed::new(row, at.position.to_string()))
}

/// A line item's discount, from `discount` (an object with `amount`, or a Money itself) or from
/// `discounts[]`: the amounts summed when they share a currency, the codes joined by commas.
fn discount(l: Fields<'_>) -> (read::Money<'_>, Option<String>) {
    let list = l.array("discounts");
    if list.is_empty() {
        return one_discount(l.obj("discount"));
    }
    let parts: Vec<_> = list.iter().map(|d| one_discount(Fields::of(d))).collect();
    let first = parts[0].0;
    let same = parts
        .iter()
        .all(|(m, _)| m.currency == first.currency && m.exponent == first.exponent);
    let total = read::Money {
        value: if same {
            parts.iter().map(|(m, _)| m.value).sum::<Option<i64>>()
        } else {
            None
        },
        ..first
    };
    let codes: Vec<String> = parts.into_iter().filter_map(|(_, c)| c).collect();
    (total, (!codes.is_empty()).then(|| codes.join(",")))
}

fn one_discount(d: Fields<'_>) -> (read::Money<'_>, Option<String>) {
    let amount = if d.json("amount").is_some() {
        d.money("amount")
    } else {
        read::Money {
            value: d.int("value"),
            currency: d.str("currency"),
            exponent: d.int("exponent"),
        }
    };
    (amount, d.string("code"))
}
