//! `GET /v1/bookings/{id}/tickets`: answered whole. Tickets follow their booking's status (a
//! check-in moves the booking to `CHECKED_IN` and its `updated_at`).

use serde_json::{Value, json};

use super::{Keyed, PerParent, Resource, Shape};
use crate::world::catalogue::MAX_TICKETS;
use crate::world::{Kind, Rng, World, make_id, ts};

pub static RESOURCE: Resource = Resource {
    stream: "booking_tickets",
    scope: "booking.read",
    shape: Shape::PerParent(PerParent {
        parent: &super::bookings::RESOURCE,
        path: "tickets",
        paged: false,
        localized: false,
        keyed: Keyed::ById,
        render: |w, i, _| w.tickets(i),
    }),
    generate: None,
    mutate: None,
};

impl World {
    /// Booking `i`'s tickets: one per ticket bought (at most `MAX_TICKETS`), each of the variant
    /// its order line charged. A checked-in booking's tickets are checked in but, now and then,
    /// the last one (a no-show); a cancelled booking's are cancelled.
    pub(crate) fn tickets(&self, i: usize) -> Vec<Value> {
        let e = self.booking_experience(i);
        let mut variants: Vec<String> = Vec::new();
        if i % 10 == 9 {
            // Paid with a gift card: the order sold the card, the booking holds one adult ticket.
            variants.push(self.variant_id(e, 0, false));
        } else {
            for l in self.lines(i).iter().filter(|l| l.product_type == "TICKET") {
                for _ in 0..l.quantity {
                    variants.push(l.product_id.clone());
                }
            }
        }
        variants.truncate(MAX_TICKETS as usize);
        let status = self.booking_status(i);
        let version = u64::from(self.bookings.version[i]);
        let mut r = Rng::new(&[self.seed, 12, i as u64, version]);
        let no_show = r.chance(0.25) && variants.len() > 1;
        let count = variants.len();
        variants
            .into_iter()
            .enumerate()
            .map(|(t, variant)| {
                let id = make_id(self.seed, Kind::BookingTicket, (i as u64) << 4 | t as u64);
                let checked_in = status == "CHECKED_IN" && !(no_show && t + 1 == count);
                let ticket_status = match status {
                    "CANCELLED" => "CANCELLED",
                    _ if checked_in => "CHECKED_IN",
                    _ => "VALID",
                };
                let mut x = json!({
                    "id": id,
                    "status": ticket_status,
                    "items": [{"item_type": "VARIANT", "quantity": 1, "type_id": variant}],
                    "urls": [{"type": "PDF", "url": format!("https://tickets.example.org/{id}.pdf")}],
                });
                if checked_in {
                    let method = if self.data.variants && t == 1 {
                        "NFC_TAP"
                    } else {
                        r.pick(&["QR_SCAN", "QR_SCAN", "MANUAL"])
                    };
                    x["check_in"] = json!({
                        "check_in_time": ts(self.bookings.updated[i] - 60 * t as i64),
                        "checked_in_by": format!("guide-{}", 1 + r.below(4)),
                        "method": method,
                    });
                }
                self.finish(x, &["check_in"], &[self.seed, 13, i as u64, t as u64, version])
            })
            .collect()
    }
}
