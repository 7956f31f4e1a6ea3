//! What sits behind a booking: the ticket variants an experience sells and the questions it
//! asks (`/v1/experiences/{id}/ticket-variants`, `…/information-requests`), and per booking the
//! tickets with their check-ins and the guests' answers (`/v1/bookings/{id}/tickets`,
//! `…/information-request-answers`).
//!
//! How they change, and so what a sync that fetches them only for new or changed parents can
//! rely on: a ticket variant's price and a question's `required` flag move with their
//! experience's version (its `updated_at` moves with them); tickets follow their booking's
//! status (a check-in moves the booking to `CHECKED_IN`, and its `updated_at`), and answers
//! are drawn from the booking's version. The docs do not promise this (`understory-api.md`
//! §1.2 says nothing of it); the README states the assumption.

use serde_json::{Value, json};

use super::{Kind, Rng, World, make_id, mix, money, ts};

/// (en, da, de) names of the main ticket variants, by index.
const VARIANTS: [(&str, &str, &str); 3] = [
    ("Adult", "Voksen", "Erwachsener"),
    ("Child", "Barn", "Kind"),
    ("Senior", "Pensionist", "Senior"),
];
/// Share of the adult price each variant costs, in percent.
const VARIANT_SHARE: [i64; 3] = [100, 60, 80];
const ADD_ONS: [(&str, &str, &str); 2] = [
    ("Lunch", "Frokost", "Mittagessen"),
    ("Photo package", "Fotopakke", "Fotopaket"),
];
/// (question, answers) of each information request an experience may ask.
const QUESTIONS: [(&str, [&str; 4]); 3] = [
    (
        "Any dietary requirements?",
        ["none", "vegetarian", "vegan", "gluten-free"],
    ),
    (
        "Which hotel should we pick you up from?",
        ["Hotel d'Angleterre", "Nimb", "Hotel Skt. Petri", "no pick-up"],
    ),
    (
        "How did you hear about us?",
        ["Google", "a friend", "Instagram", "TripAdvisor"],
    ),
];
/// Tickets a booking holds at most (quantities above it are group bookings on one ticket).
const MAX_TICKETS: i64 = 6;

fn localized(names: (&'static str, &'static str, &'static str), language: &str) -> &'static str {
    match language {
        "da" => names.1,
        "de" => names.2,
        _ => names.0,
    }
}

impl World {
    /// How many main variants experience `e` sells (2 or 3); add-ons are `ADD_ONS.len()`.
    pub(super) fn variant_count(&self, e: usize) -> usize {
        2 + (mix(self.seed ^ 0x7661_7269 ^ e as u64) % 2) as usize
    }

    /// The id of main variant `v` (or, with `add_on`, add-on `v`) of experience `e`.
    pub(super) fn variant_id(&self, e: usize, v: usize, add_on: bool) -> String {
        let slot = if add_on { 4 + v } else { v };
        make_id(self.seed, Kind::TicketVariant, (e as u64) << 3 | slot as u64)
    }

    /// A main variant's price when orders were placed: what line items were charged.
    pub(super) fn variant_list_price(&self, e: usize, v: usize) -> i64 {
        self.experience_price(e) * VARIANT_SHARE[v % VARIANT_SHARE.len()] / 100
    }

    /// Experience `e`'s ticket variants, as the API lists them, named in `language`.
    pub fn ticket_variants(&self, e: usize, language: &str) -> Vec<Value> {
        let version = i64::from(self.experiences.version[e]);
        // Prices move with the experience's version; orders already placed keep theirs.
        let now_price = |list: i64| list + version * 500;
        let add_ons: Vec<Value> = ADD_ONS
            .iter()
            .enumerate()
            .map(|(a, names)| {
                let price = now_price(self.experience_price(e) / 5);
                json!({
                    "id": self.variant_id(e, a, true),
                    "name": localized(*names, language),
                    "description": format!("Add {}", localized(*names, "en").to_lowercase()),
                    "price": money(price),
                    "vat_amount": money(price / 5),
                })
            })
            .collect();
        (0..self.variant_count(e))
            .map(|v| {
                let price = now_price(self.variant_list_price(e, v));
                let mut x = json!({
                    "id": self.variant_id(e, v, false),
                    "name": localized(VARIANTS[v], language),
                    "price": money(price),
                    "vat_amount": money(price / 5),
                    "add_on_variants": add_ons,
                });
                if v == 0 {
                    x["description"] = json!("Ages 16 and up");
                }
                self.finish(
                    x,
                    &["description"],
                    &[self.seed, 10, e as u64, v as u64, version as u64],
                )
            })
            .collect()
    }

    /// How many information requests experience `e` asks (0 to 3): which of `QUESTIONS`.
    fn question_count(&self, e: usize) -> usize {
        (mix(self.seed ^ 0x7175_6573 ^ e as u64) % 4) as usize
    }

    /// Experience `e`'s information requests. With variants on, some still carry the question
    /// as `label`, its name before the 2025-12-19 rename.
    pub fn information_requests(&self, e: usize) -> Vec<Value> {
        let version = u64::from(self.experiences.version[e]);
        (0..self.question_count(e))
            .map(|q| {
                let (question, _) = QUESTIONS[q];
                let mut x = json!({
                    "id": make_id(self.seed, Kind::InformationRequest, (e as u64) << 2 | q as u64),
                    "type": "TEXT",
                    "required": (q as u64 + version).is_multiple_of(2),
                    "scope": if q == 0 { "TICKET" } else { "BOOKING" },
                });
                let key = if self.data.variants && (e + q).is_multiple_of(3) {
                    "label"
                } else {
                    "question"
                };
                x[key] = json!(question);
                self.finish(x, &[], &[self.seed, 11, e as u64, q as u64, version])
            })
            .collect()
    }

    /// The experience a booking is for.
    fn booking_experience(&self, i: usize) -> usize {
        self.event_experience(self.booking_event(i))
    }

    /// Booking `i`'s tickets: one per ticket bought (at most `MAX_TICKETS`), each of the variant
    /// its order line charged. A checked-in booking's tickets are checked in but, now and then,
    /// the last one (a no-show); a cancelled booking's are cancelled.
    pub fn tickets(&self, i: usize) -> Vec<Value> {
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

    /// Booking `i`'s answers to its experience's information requests, drawn from the booking's
    /// version (a changed booking may carry changed answers). The schema is not published; the
    /// sandbox sends `{information_request_id, question, answer}` and, with variants on, now
    /// and then an older-looking `{request_id, value}`.
    pub fn answers(&self, i: usize) -> Vec<Value> {
        let e = self.booking_experience(i);
        let version = u64::from(self.bookings.version[i]);
        let mut r = Rng::new(&[self.seed, 14, i as u64, version]);
        let first_ticket = self
            .tickets(i)
            .first()
            .and_then(|t| t["id"].as_str().map(str::to_owned));
        (0..self.question_count(e))
            .filter_map(|q| {
                let (question, options) = QUESTIONS[q];
                let answer = r.pick(&options);
                // Optional questions are sometimes left unanswered.
                if q > 0 && r.chance(0.2) {
                    return None;
                }
                let request = make_id(self.seed, Kind::InformationRequest, (e as u64) << 2 | q as u64);
                let mut x = if self.data.variants && (i + q).is_multiple_of(5) {
                    json!({"request_id": request, "value": answer})
                } else {
                    json!({"information_request_id": request, "question": question, "answer": answer})
                };
                if q == 0
                    && let Some(ticket) = &first_ticket
                {
                    x["ticket_id"] = json!(ticket);
                }
                Some(self.finish(x, &[], &[self.seed, 15, i as u64, q as u64, version]))
            })
            .collect()
    }
}
