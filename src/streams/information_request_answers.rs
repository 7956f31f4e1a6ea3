//! `GET /v1/bookings/{id}/information-request-answers` → `information_request_answers`: what
//! guests answered at booking. The schema is not published (`docs/understory-api.md` §1.2), so an
//! answer is kept whole in `raw_json`, keyed by its position in the booking's list, and only
//! what can be typed safely gets a column: the request it answers (`information_request_id`,
//! or `request_id`), the question, the answer when it is text (`answer`, or `value`), and the
//! ticket it is for. Nothing is required.

use serde::Serialize;

use super::read::Fields;
use super::stream::{At, Mode, Parsed, PerParent, Replace, Stream};

pub(crate) static STREAM: Stream = Stream {
    name: "information_request_answers",
    path: "information-request-answers",
    scope: "booking.read",
    mode: Mode::PerParent(PerParent {
        parent: &super::bookings::STREAM,
        paged: false,
        replace: Replace::ByPosition,
    }),
    enabled_by_default: false,
    webhook: None,
    parse,
};

#[derive(Debug, Serialize)]
struct Answer {
    booking_id: String,
    position: i64,
    information_request_id: Option<String>,
    question: Option<String>,
    answer: Option<String>,
    ticket_id: Option<String>,
}

fn parse(at: At<'_>, a: Fields<'_>) -> Result<Parsed, String> {
    let row = Answer {
        booking_id: at.parent_id.to_owned(),
        position: at.position as i64,
        information_request_id: a
            .string("information_request_id")
            .or_else(|| a.string("request_id")),
        question: a.string("question").or_else(|| a.string("label")),
        answer: a.string("answer").or_else(|| a.string("value")),
        ticket_id: a.string("ticket_id"),
    };
    Ok(Parsed::new(row, at.position.to_string()))
}
