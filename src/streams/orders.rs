//! `GET /v1/orders` → `orders`, and each order's line items, transactions and refunds, which
//! the API serves only from per-order endpoints (`understory-api.md` §2, Order).
//!
//! Required: an order's `id`, `created_at` and `updated_at`; a transaction's or refund's `id`.
//! Line items have no id and require nothing. Unsettled shapes are read leniently: `origin` may
//! lack either key, and a line item's discount comes as the docs' singular `discount` or as
//! `discounts[]` (MindCloud's capture), whose amounts are summed and codes joined.

use rusqlite::types::Value;
use serde_json::value::RawValue;

use super::read::{self, Fields};
use super::{
    Child, Item, Mode, Stream, customer, item, money, opt_int, opt_json, opt_text, opt_ts, row, text, ts,
};
use crate::store::{Children, Prune, Quarantined, Row};

/// The per-order endpoints, fetched by the fan-out when an order is new or changed.
static CHILDREN: [Child; 3] = [
    Child {
        table: LINE_ITEMS,
        leaf: "line-items",
        read: children,
    },
    Child {
        table: TRANSACTIONS,
        leaf: "transactions",
        read: children,
    },
    Child {
        table: REFUNDS,
        leaf: "refunds",
        read: children,
    },
];

const LINE_ITEMS: &str = "order_line_items";
const TRANSACTIONS: &str = "order_transactions";
const REFUNDS: &str = "order_refunds";

pub static STREAM: Stream = Stream {
    name: "orders",
    path: "v1/orders",
    scope: "order.read",
    mode: Mode::Incremental,
    enabled_by_default: true,
    parse,
    children: &CHILDREN,
};

pub fn parse(raw: &RawValue) -> Result<Item, String> {
    item(raw, |o| {
        let id = o.required_str("id")?;
        let created_at = o.required_ts("created_at")?;
        let updated_at = o.required_ts("updated_at")?;
        let origin = o.obj("origin");
        let totals = o.obj("totals");
        let mut cols = vec![
            (":number", opt_text(o.str("number"))),
            (":status", opt_text(o.str("status"))),
            (":payment_status", opt_text(o.str("payment_status"))),
            (":created_at", ts(created_at)),
            (":updated_at", ts(updated_at)),
            (":origin_type", opt_text(origin.str("type"))),
            (":origin_id", opt_text(origin.str("id"))),
            (":metadata_json", opt_json(o.json("metadata"))),
        ];
        customer(&mut cols, o.obj("customer"));
        money(
            &mut cols,
            [":discount_minor", ":discount_currency", ":discount_exponent"],
            totals.money("discount"),
        );
        money(
            &mut cols,
            [
                ":vat_amount_minor",
                ":vat_amount_currency",
                ":vat_amount_exponent",
            ],
            totals.money("vat_amount"),
        );
        money(
            &mut cols,
            [":amount_minor", ":amount_currency", ":amount_exponent"],
            totals.money("amount"),
        );
        Ok(Item {
            row: row(STREAM.name, vec![(":id", text(id))], cols, raw),
            key: id.to_owned(),
            created_at: Some(created_at),
            updated_at: Some(updated_at),
        })
    })
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
    (amount, d.str("code").map(str::to_owned))
}

fn line_item(order_id: &str, position: usize, l: Fields<'_>, raw: &RawValue) -> Row {
    let details = l.obj("details");
    let (disc, code) = discount(l);
    let mut cols = vec![
        (":quantity", opt_int(l.int("quantity"))),
        (":product_type", opt_text(l.str("product_type"))),
        (":product_id", opt_text(l.str("product_id"))),
        (":details_type", opt_text(details.str("type"))),
        (":experience_id", opt_text(details.str("experience_id"))),
        (":ticket_id", opt_text(details.str("ticket_id"))),
        (":gift_card_id", opt_text(details.str("gift_card_id"))),
        (":discount_code", opt_text(code.as_deref())),
    ];
    money(
        &mut cols,
        [
            ":unit_price_minor",
            ":unit_price_currency",
            ":unit_price_exponent",
        ],
        l.money("unit_price"),
    );
    money(
        &mut cols,
        [
            ":unit_vat_amount_minor",
            ":unit_vat_amount_currency",
            ":unit_vat_amount_exponent",
        ],
        l.money("unit_vat_amount"),
    );
    money(
        &mut cols,
        [":discount_minor", ":discount_currency", ":discount_exponent"],
        disc,
    );
    row(
        LINE_ITEMS,
        vec![
            (":order_id", text(order_id)),
            (":position", Value::Integer(position as i64)),
        ],
        cols,
        raw,
    )
}

/// A transaction or refund; `None` (with why) when it has no id.
fn payment(
    table: &'static str,
    order_id: &str,
    t: Fields<'_>,
    raw: &RawValue,
) -> Result<(String, Row), String> {
    let id = t.required_str("id")?;
    let mut cols = vec![
        (":order_id", text(order_id)),
        (":status", opt_text(t.str("status"))),
        (":created_at", opt_ts(t.ts("created_at"))),
    ];
    if table == TRANSACTIONS {
        let details = t.obj("details");
        cols.extend([
            (":provider", opt_text(t.str("provider"))),
            (":details_type", opt_text(details.str("type"))),
            (":gift_card_id", opt_text(details.str("gift_card_id"))),
        ]);
    } else {
        cols.push((":transaction_id", opt_text(t.str("transaction_id"))));
    }
    money(
        &mut cols,
        [":amount_minor", ":amount_currency", ":amount_exponent"],
        t.money("amount"),
    );
    Ok((id.to_owned(), row(table, vec![(":id", text(id))], cols, raw)))
}

/// Maps the `items` of one sub-resource list of `order_id` to the rows replacing what is stored;
/// an item that cannot be read goes to quarantine and the others are kept.
fn children(table: &'static str, order_id: &str, items: &[Box<RawValue>]) -> Children {
    let mut rows = Vec::with_capacity(items.len());
    let mut ids = Vec::new();
    let mut quarantined = Vec::new();
    for (position, raw) in items.iter().enumerate() {
        let value: serde_json::Value = serde_json::from_str(raw.get()).unwrap_or_default();
        let read = Fields::item(&value).and_then(|f| match table {
            LINE_ITEMS => Ok(line_item(order_id, position, f, raw)),
            _ => payment(table, order_id, f, raw).map(|(id, row)| {
                ids.push(id);
                row
            }),
        });
        match read {
            Ok(row) => rows.push(row),
            Err(error) => quarantined.push(Quarantined {
                stream: table,
                key: format!("{order_id}#{position}"),
                id: None,
                parent_id: Some(order_id.to_owned()),
                error: format!("order {order_id} item {position}: {error}"),
                raw_json: raw.get().to_owned(),
            }),
        }
    }
    let prune = match table {
        LINE_ITEMS => Prune::BeyondPosition(items.len() as i64),
        _ => Prune::NotIn(ids),
    };
    Children {
        table,
        order_id: order_id.to_owned(),
        rows,
        prune,
        quarantined,
    }
}
