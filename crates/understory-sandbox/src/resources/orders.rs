//! `GET /v1/orders` (and `/v1/orders/{id}`): one order per booking (or gift card), sortable and
//! filtered like bookings. Changes move an order's status; refunds appear on paid orders.

use serde_json::{Value, json};

use super::{List, Range, Resource, Shape};
use crate::world::Step;
use crate::world::{self, Kind, Rng, World, make_id, money, remove, ts};

pub static RESOURCE: Resource = Resource {
    stream: "orders",
    scope: "order.read",
    shape: Shape::List(List {
        path: "/v1/orders",
        max_limit: 100,
        sortable: true,
        range: Range::Created,
        localized: false,
        select: |w, s| w.orders.select(s),
        render: |w, i, _| w.order(i),
        find: |w, id| w.orders.find(w.seed(), Kind::Order, id),
        key: |w, i, v| (!w.broken(Kind::Order, i, w.orders.version[i])).then(|| world::id_of(v)),
    }),
    generate: Some(generate),
    mutate: Some(mutate),
};

/// One order per booking, made with it; some paid orders were refunded before the world began.
fn generate(w: &mut World) {
    for i in 0..w.bookings.len() {
        // The booking's own draw comes first from the same generator.
        let mut r = Rng::new(&[w.seed, Kind::Booking as u64, i as u64]);
        let created = w.bookings.created[i];
        w.first_update(&mut r, created, 30 * 86_400);
        let updated = w.first_update(&mut r, created, 20 * 86_400);
        w.orders.push(created, updated);
        if r.chance(0.03) && w.order_is_paid(i) {
            w.refunds.insert(i as u32, vec![updated]);
        }
    }
}

/// One order per booking the step created, changes to a share of the others, and refunds.
fn mutate(w: &mut World, step: &mut Step) {
    let old = w.orders.len();
    for k in old..w.bookings.len() {
        let created = w.bookings.created[k];
        w.orders.push(created, created);
    }
    for _ in 0..step.share(old, step.cfg.update_share) {
        let j = step.r.below(old as u64) as usize;
        let at = step.moment();
        w.orders.touch(j, at);
    }
    for _ in 0..step.share(old, step.cfg.refund_share) {
        let j = step.r.below(old as u64) as usize;
        let count = w.refunds.get(&(j as u32)).map_or(0, Vec::len);
        if w.order_is_paid(j) && count < 2 {
            let at = step.moment();
            w.refunds.entry(j as u32).or_default().push(at);
            w.orders.touch(j, at);
        }
    }
}

/// One order line as the model holds it.
pub(crate) struct Line {
    pub(crate) quantity: i64,
    pub(crate) unit: i64,
    pub(crate) vat: i64,
    pub(crate) product_type: &'static str,
    pub(crate) product_id: String,
    pub(crate) details: Value,
    /// Discount per unit, if any.
    pub(crate) discount: Option<i64>,
}

impl World {
    pub(crate) fn order_is_paid(&self, j: usize) -> bool {
        let mut r = Rng::new(&[self.seed, Kind::Order as u64, j as u64]);
        j % 10 == 9 || r.below(100) < 85
    }

    /// An order's lines as the model holds them, before rendering.
    pub(crate) fn lines(&self, j: usize) -> Vec<Line> {
        let mut r = Rng::new(&[self.seed, Kind::Order as u64, j as u64, 3]);
        if j % 10 == 9 {
            let gift = make_id(self.seed, Kind::GiftCard, j as u64);
            return vec![Line {
                quantity: 1,
                unit: 50_000 + r.below(10) as i64 * 10_000,
                vat: 0,
                product_type: "GIFTCARD",
                product_id: gift.clone(),
                details: json!({"type": "GIFT_CARD", "gift_card_id": gift}),
                discount: None,
            }];
        }
        let experience = self.event_experience(self.booking_event(j));
        let variants = self.variant_count(experience) as u64;
        (0..1 + r.below(3))
            .map(|n| {
                let addon = n > 0 && r.chance(0.5);
                // A ticket line charges one of the experience's variants, an add-on line one of
                // its add-ons, at the price of the day the order was placed.
                let pick = r.below(if addon { 2 } else { variants }) as usize;
                let unit = if addon {
                    self.experience_price(experience) / 5
                } else {
                    self.variant_list_price(experience, pick)
                };
                Line {
                    quantity: 1 + r.below(4) as i64,
                    unit,
                    vat: unit / 5,
                    product_type: if addon { "TICKET_ADDON" } else { "TICKET" },
                    product_id: self.variant_id(experience, pick, addon),
                    details: json!({
                        "type": "TICKET",
                        "experience_id": make_id(self.seed, Kind::Experience, experience as u64),
                        "ticket_id": make_id(self.seed, Kind::Ticket, (j as u64) << 3 | n),
                    }),
                    discount: r.chance(0.1).then_some(unit / 10),
                }
            })
            .collect()
    }

    /// (discount, VAT, amount) of an order, in øre.
    pub(crate) fn totals(&self, j: usize) -> (i64, i64, i64) {
        let lines = self.lines(j);
        let gross: i64 = lines.iter().map(|l| l.quantity * l.unit).sum();
        let vat: i64 = lines.iter().map(|l| l.quantity * l.vat).sum();
        let discount: i64 = lines
            .iter()
            .filter_map(|l| l.discount.map(|d| d * l.quantity))
            .sum();
        (discount, vat, gross - discount)
    }

    pub(crate) fn order(&self, j: usize) -> Value {
        let v = self.orders.version[j];
        let mut r = Rng::new(&[self.seed, Kind::Order as u64, j as u64, 9]);
        let mut rv = Rng::new(&[self.seed, Kind::Order as u64, j as u64, 1000 + u64::from(v)]);
        let refunds = self.refunds.get(&(j as u32)).map_or(0, Vec::len);
        let paid = self.order_is_paid(j);
        let (status, payment) = match (paid, refunds) {
            (true, 0) => ("COMPLETED", "PAID"),
            (true, 1) => ("COMPLETED", "PARTIALLY_REFUNDED"),
            (true, _) => ("CANCELLED", "REFUNDED"),
            (false, _) if v > 0 => ("CANCELLED", "UNPAID"),
            (false, _) => ("PENDING", "UNPAID"),
        };
        let payment = if self.unknown(&mut rv) {
            "AUTHORIZED"
        } else {
            payment
        };
        let gift = j % 10 == 9;
        let (discount, vat, amount) = self.totals(j);
        let mut origin = if gift {
            json!({"type": "GIFT_CARD", "id": make_id(self.seed, Kind::GiftCard, j as u64)})
        } else {
            json!({"type": "BOOKING", "id": make_id(self.seed, Kind::Booking, j as u64)})
        };
        if self.data.variants && j % 7 == 3 {
            remove(&mut origin, "type");
        }
        let mut o = json!({
            "id": make_id(self.seed, Kind::Order, j as u64),
            "number": format!("{}", 100_000 + j),
            "status": status,
            "created_at": ts(self.orders.created[j]),
            "updated_at": ts(self.orders.updated[j]),
            "customer": self.customer(j),
            "origin": origin,
            "totals": {"discount": money(discount), "vat_amount": money(vat), "amount": money(amount)},
        });
        if !r.chance(0.05) {
            o["payment_status"] = json!(payment);
        }
        if r.chance(0.15) {
            o["metadata"] = json!({"channel": "partner"});
        }
        if self.broken(Kind::Order, j, v) {
            remove(&mut o, "created_at");
        }
        self.finish(
            o,
            &["payment_status", "metadata"],
            &[self.seed, 2, j as u64, u64::from(v)],
        )
    }
}
