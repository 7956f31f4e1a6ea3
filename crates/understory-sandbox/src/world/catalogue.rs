//! What an experience sells and asks, shared by the resources behind a booking: ticket variants
//! and their prices, add-ons, and the information requests' questions and answers.
//!
//! How they change, and so what a sync that fetches them only for new or changed parents can
//! rely on: a ticket variant's price and a question's `required` flag move with their
//! experience's version (its `updated_at` moves with them); tickets follow their booking's
//! status (a check-in moves the booking to `CHECKED_IN`, and its `updated_at`), and answers
//! are drawn from the booking's version. The docs do not promise this
//! (`docs/understory-api.md` §1.2 says nothing of it); docs/design.md states the assumption.

use super::{Kind, World, make_id, mix};

/// (en, da, de) names of the main ticket variants, by index.
pub(crate) const VARIANTS: [(&str, &str, &str); 3] = [
    ("Adult", "Voksen", "Erwachsener"),
    ("Child", "Barn", "Kind"),
    ("Senior", "Pensionist", "Senior"),
];
/// Share of the adult price each variant costs, in percent.
pub(crate) const VARIANT_SHARE: [i64; 3] = [100, 60, 80];
pub(crate) const ADD_ONS: [(&str, &str, &str); 2] = [
    ("Lunch", "Frokost", "Mittagessen"),
    ("Photo package", "Fotopakke", "Fotopaket"),
];
/// (question, answers) of each information request an experience may ask.
pub(crate) const QUESTIONS: [(&str, [&str; 4]); 3] = [
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
pub(crate) const MAX_TICKETS: i64 = 6;

pub(crate) fn localized(names: (&'static str, &'static str, &'static str), language: &str) -> &'static str {
    match language {
        "da" => names.1,
        "de" => names.2,
        _ => names.0,
    }
}

impl World {
    /// How many main variants experience `e` sells (2 or 3); add-ons are `ADD_ONS.len()`.
    pub(crate) fn variant_count(&self, e: usize) -> usize {
        2 + (mix(self.seed ^ 0x7661_7269 ^ e as u64) % 2) as usize
    }

    /// The id of main variant `v` (or, with `add_on`, add-on `v`) of experience `e`.
    pub(crate) fn variant_id(&self, e: usize, v: usize, add_on: bool) -> String {
        let slot = if add_on { 4 + v } else { v };
        make_id(self.seed, Kind::TicketVariant, (e as u64) << 3 | slot as u64)
    }

    /// A main variant's price when orders were placed: what line items were charged.
    pub(crate) fn variant_list_price(&self, e: usize, v: usize) -> i64 {
        self.experience_price(e) * VARIANT_SHARE[v % VARIANT_SHARE.len()] / 100
    }

    /// How many information requests experience `e` asks (0 to 3): which of `QUESTIONS`.
    pub(crate) fn question_count(&self, e: usize) -> usize {
        (mix(self.seed ^ 0x7175_6573 ^ e as u64) % 4) as usize
    }

    /// The experience a booking is for.
    pub(crate) fn booking_experience(&self, i: usize) -> usize {
        self.event_experience(self.booking_event(i))
    }
}
