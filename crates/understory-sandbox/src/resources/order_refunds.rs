//! `GET /v1/orders/{id}/refunds`: answered whole; refunds appear as orders change.

use serde_json::{Value, json};

use super::{Keyed, PerParent, Resource, Shape};
use crate::world::{Kind, World, make_id, money, ts};

pub static RESOURCE: Resource = Resource {
    stream: "order_refunds",
    scope: "order.read",
    shape: Shape::PerParent(PerParent {
        parent: &super::orders::RESOURCE,
        path: "refunds",
        paged: false,
        localized: false,
        keyed: Keyed::ById,
        render: |w, j, _| w.refunds(j),
    }),
    generate: None,
    mutate: None,
};

impl World {
    pub(crate) fn refunds(&self, j: usize) -> Vec<Value> {
        let Some(times) = self.refunds.get(&(j as u32)) else {
            return Vec::new();
        };
        let total = self.totals(j).2;
        times
            .iter()
            .enumerate()
            .map(|(k, &at)| {
                let refund = json!({
                    "id": make_id(self.seed, Kind::Refund, (j as u64) << 2 | k as u64),
                    "status": "COMPLETED",
                    "amount": money(total / 2),
                    "transaction_id": make_id(self.seed, Kind::Transaction, j as u64),
                    "created_at": ts(at),
                });
                self.finish(refund, &[], &[])
            })
            .collect()
    }
}
