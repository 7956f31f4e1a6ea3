//! `GET /v1/orders/{id}/transactions`: answered whole; a paid order has one.

use serde_json::{Value, json};

use super::{Keyed, PerParent, Resource, Shape};
use crate::world::{BROKEN_ONE_IN, mix};
use crate::world::{Kind, Rng, World, make_id, money, remove, ts};

pub static RESOURCE: Resource = Resource {
    stream: "order_transactions",
    scope: "order.read",
    shape: Shape::PerParent(PerParent {
        parent: &super::orders::RESOURCE,
        path: "transactions",
        paged: false,
        localized: false,
        keyed: Keyed::ById,
        render: |w, j, _| w.transactions(j),
    }),
    generate: None,
    mutate: None,
};

impl World {
    pub(crate) fn transactions(&self, j: usize) -> Vec<Value> {
        if !self.order_is_paid(j) {
            return Vec::new();
        }
        let gift = j % 10 == 9;
        let mut r = Rng::new(&[self.seed, Kind::Transaction as u64, j as u64]);
        let status = if self.data.variants && r.chance(0.2) {
            "SETTLED_LATER"
        } else {
            "COMPLETED"
        };
        let t = json!({
            "id": make_id(self.seed, Kind::Transaction, j as u64),
            "status": status,
            "provider": if gift { "STRIPE" } else { "ADYEN" },
            "amount": money(self.totals(j).2),
            "created_at": ts(self.orders.created[j] + 60),
            "details": {"type": "CARD"},
        });
        let mut t = self.finish(t, &["details"], &[self.seed, 4, j as u64]);
        // With variants on, now and then a transaction without its id: a child item the job
        // cannot key goes to quarantine under its parent, and the rest of the list is stored.
        if self.data.variants
            && mix(self.seed ^ mix((Kind::Transaction as u64) << 40 ^ j as u64))
                .is_multiple_of(BROKEN_ONE_IN / 3)
        {
            remove(&mut t, "id");
        }
        vec![t]
    }
}
