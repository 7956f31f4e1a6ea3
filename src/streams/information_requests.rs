//! `GET /v1/experiences/{id}/information-requests` → `information_requests`: the questions an
//! experience asks at booking. Paged; required: `id`. The question is `question`, or `label`
//! (its name before the 2025-12-19 rename).

use serde::Serialize;

use super::read::Fields;
use super::stream::{At, Mode, Parsed, PerParent, Replace, Stream};

pub(crate) static STREAM: Stream = Stream {
    name: "information_requests",
    path: "information-requests",
    scope: "experience.read",
    mode: Mode::PerParent(PerParent {
        parent: &super::experiences::STREAM,
        paged: true,
        replace: Replace::ById,
    }),
    enabled_by_default: false,
    webhook: None,
    parse,
};

#[derive(Debug, Serialize)]
struct InformationRequest {
    id: String,
    experience_id: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    required: Option<bool>,
    scope: Option<String>,
    question: Option<String>,
}

fn parse(at: At<'_>, q: Fields<'_>) -> Result<Parsed, String> {
    let id = q.required_str("id")?;
    let row = InformationRequest {
        id: id.to_owned(),
        experience_id: at.parent_id.to_owned(),
        kind: q.string("type"),
        required: q.bool("required"),
        scope: q.string("scope"),
        question: q.string("question").or_else(|| q.string("label")),
    };
    Ok(Parsed::new(row, id))
}
