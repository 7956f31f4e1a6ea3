//! `GET /v1/bookings/{id}/information-request-answers` (Gen C): answered whole, keyed by position
//! (the schema is not published and shows no id); drawn from the booking's version.

use serde_json::{Value, json};

use super::{Keyed, PerParent, Resource, Shape};
use crate::world::catalogue::QUESTIONS;
use crate::world::{Kind, Rng, World, make_id};

pub static RESOURCE: Resource = Resource {
    stream: "information_request_answers",
    scope: "booking.read",
    shape: Shape::PerParent(PerParent {
        parent: &super::bookings::RESOURCE,
        path: "information-request-answers",
        paged: false,
        localized: false,
        keyed: Keyed::ByPosition,
        render: |w, i, _| w.answers(i),
    }),
    generate: None,
    mutate: None,
};

impl World {
    /// Booking `i`'s answers to its experience's information requests, drawn from the booking's
    /// version (a changed booking may carry changed answers). The schema is not published; the
    /// sandbox sends `{information_request_id, question, answer}` and, with variants on, now
    /// and then an older-looking `{request_id, value}`.
    pub(crate) fn answers(&self, i: usize) -> Vec<Value> {
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
