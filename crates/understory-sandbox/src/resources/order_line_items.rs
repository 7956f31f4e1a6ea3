//! `GET /v1/orders/{id}/line-items`: answered whole, keyed by position (items have no id).

use serde_json::{Value, json};

use super::{Keyed, PerParent, Resource, Shape};
use crate::world::{World, money};

pub static RESOURCE: Resource = Resource {
    stream: "order_line_items",
    scope: "order.read",
    shape: Shape::PerParent(PerParent {
        parent: &super::orders::RESOURCE,
        path: "line-items",
        paged: false,
        localized: false,
        keyed: Keyed::ByPosition,
        render: |w, j, _| w.line_items(j),
    }),
    generate: None,
    mutate: None,
};

impl World {
    pub(crate) fn line_items(&self, j: usize) -> Vec<Value> {
        self.lines(j)
            .into_iter()
            .enumerate()
            .map(|(n, l)| {
                let mut item = json!({
                    "quantity": l.quantity,
                    "unit_price": money(l.unit),
                    "unit_vat_amount": money(l.vat),
                    "product_type": l.product_type,
                    "product_id": l.product_id,
                    "details": l.details,
                });
                if let Some(d) = l.discount {
                    // The docs say `discount`; MindCloud's capture shows `discounts[]` (`docs/understory-api.md` §6.15).
                    if self.data.variants && (j + n).is_multiple_of(2) {
                        item["discounts"] =
                            json!([{"amount": money(d), "code": "WELCOME10", "type": "CODE"}]);
                    } else {
                        item["discount"] = json!({"amount": money(d), "code": "WELCOME10"});
                    }
                }
                self.finish(item, &["discount"], &[self.seed, 3, j as u64, n as u64])
            })
            .collect()
    }
}
