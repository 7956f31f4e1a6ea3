//! `GET /v1/orders` → `orders`, and each order's line items, transactions and refunds, which
//! the API serves only from per-order endpoints (`understory-api.md` §2, Order).

use rusqlite::types::Value;
use serde_json::value::RawValue;

use super::{Item, customer, json, money, opt_text, row, text, ts, typed};
use crate::api::types::{LineItem, Order, Refund, Transaction};
use crate::store::{Children, Prune, Table};

/// The per-order endpoints, fetched when an order is new or its `updated_at` moved.
pub const SUBRESOURCES: [Table; 3] = [
    Table::OrderLineItems,
    Table::OrderTransactions,
    Table::OrderRefunds,
];

pub fn parse(raw: &RawValue) -> Result<Item, String> {
    let o: Order = typed(raw)?;
    let mut cols = vec![
        (":number", text(&o.number)),
        (":status", text(&o.status)),
        (":payment_status", opt_text(o.payment_status.as_deref())),
        (":created_at", ts(o.created_at)),
        (":updated_at", ts(o.updated_at)),
        (":origin_type", text(&o.origin.kind)),
        (":origin_id", text(&o.origin.id)),
        (":metadata_json", json(o.metadata.as_ref())),
    ];
    customer(&mut cols, &o.customer);
    money(
        &mut cols,
        [":discount_minor", ":discount_currency", ":discount_exponent"],
        Some(&o.totals.discount),
    );
    money(
        &mut cols,
        [
            ":vat_amount_minor",
            ":vat_amount_currency",
            ":vat_amount_exponent",
        ],
        Some(&o.totals.vat_amount),
    );
    money(
        &mut cols,
        [":amount_minor", ":amount_currency", ":amount_exponent"],
        Some(&o.totals.amount),
    );
    Ok(Item {
        row: row(Table::Orders, vec![(":id", text(&o.id))], cols, raw),
        key: o.id,
        created_at: Some(o.created_at),
        updated_at: Some(o.updated_at),
    })
}

/// The URL path of one of an order's sub-resource lists.
pub fn subresource_path(table: Table, order_id: &str) -> String {
    let leaf = match table {
        Table::OrderLineItems => "line-items",
        Table::OrderTransactions => "transactions",
        _ => "refunds",
    };
    format!("v1/orders/{order_id}/{leaf}")
}

/// Maps the `items` of one sub-resource list of `order_id` to the rows replacing what is stored.
pub fn children(table: Table, order_id: &str, items: &[Box<RawValue>]) -> Result<Children, String> {
    let oid = || (":order_id", text(order_id));
    let mut rows = Vec::with_capacity(items.len());
    let mut ids = Vec::new();
    for (position, raw) in items.iter().enumerate() {
        let r = match table {
            Table::OrderLineItems => {
                let l: LineItem = typed(raw)?;
                let mut cols = vec![
                    (":quantity", Value::Integer(l.quantity)),
                    (":product_type", text(&l.product_type)),
                    (":product_id", text(&l.product_id)),
                    (":details_type", text(&l.details.kind)),
                    (":experience_id", opt_text(l.details.experience_id.as_deref())),
                    (":ticket_id", opt_text(l.details.ticket_id.as_deref())),
                    (":gift_card_id", opt_text(l.details.gift_card_id.as_deref())),
                    (
                        ":discount_code",
                        opt_text(l.discount.as_ref().and_then(|d| d.code.as_deref())),
                    ),
                ];
                money(
                    &mut cols,
                    [
                        ":unit_price_minor",
                        ":unit_price_currency",
                        ":unit_price_exponent",
                    ],
                    Some(&l.unit_price),
                );
                money(
                    &mut cols,
                    [
                        ":unit_vat_amount_minor",
                        ":unit_vat_amount_currency",
                        ":unit_vat_amount_exponent",
                    ],
                    Some(&l.unit_vat_amount),
                );
                money(
                    &mut cols,
                    [":discount_minor", ":discount_currency", ":discount_exponent"],
                    l.discount.as_ref().map(|d| &d.amount),
                );
                row(
                    table,
                    vec![oid(), (":position", Value::Integer(position as i64))],
                    cols,
                    raw,
                )
            }
            Table::OrderTransactions => {
                let t: Transaction = typed(raw)?;
                let details = t.details.as_ref();
                let mut cols = vec![
                    oid(),
                    (":status", text(&t.status)),
                    (":provider", text(&t.provider)),
                    (":created_at", ts(t.created_at)),
                    (":details_type", opt_text(details.map(|d| d.kind.as_str()))),
                    (
                        ":gift_card_id",
                        opt_text(details.and_then(|d| d.gift_card_id.as_deref())),
                    ),
                ];
                money(
                    &mut cols,
                    [":amount_minor", ":amount_currency", ":amount_exponent"],
                    Some(&t.amount),
                );
                ids.push(t.id.clone());
                row(table, vec![(":id", text(&t.id))], cols, raw)
            }
            _ => {
                let f: Refund = typed(raw)?;
                let mut cols = vec![
                    oid(),
                    (":status", text(&f.status)),
                    (":transaction_id", text(&f.transaction_id)),
                    (":created_at", ts(f.created_at)),
                ];
                money(
                    &mut cols,
                    [":amount_minor", ":amount_currency", ":amount_exponent"],
                    Some(&f.amount),
                );
                ids.push(f.id.clone());
                row(table, vec![(":id", text(&f.id))], cols, raw)
            }
        };
        rows.push(r);
    }
    let prune = match table {
        Table::OrderLineItems => Prune::BeyondPosition(items.len() as i64),
        _ => Prune::NotIn(ids),
    };
    Ok(Children {
        table,
        order_id: order_id.to_owned(),
        rows,
        prune,
    })
}
