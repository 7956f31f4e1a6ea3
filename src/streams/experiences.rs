//! `GET /v1/experiences` → `experiences`, named in `api.accept_language`; only `id` is required.
//! On by default: the views and the example queries name experiences from it (without it they
//! list ids), for one request per 100 experiences a run.

use serde::Serialize;

use super::read::Fields;
use super::stream::{At, Mode, Parsed, Stream, Webhook};
use crate::store::Ts;

pub(crate) static STREAM: Stream = Stream {
    name: "experiences",
    path: "v1/experiences",
    scope: "experience.read",
    mode: Mode::Scan,
    enabled_by_default: true,
    webhook: Some(Webhook {
        types: &["v1.experience.created", "v1.experience.updated", "v1.experience.deleted"],
        id_field: "experience_id",
        removing: &["v1.experience.deleted"],
    }),
    parse,
};

#[derive(Debug, Serialize)]
struct Experience {
    id: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    state: Option<String>,
    name: Option<String>,
    description: Option<String>,
    created_at: Option<Ts>,
    updated_at: Option<Ts>,
    tag_ids_json: Option<String>,
    media_json: Option<String>,
    metadata_json: Option<String>,
}

fn parse(_: At<'_>, x: Fields<'_>) -> Result<Parsed, String> {
    let id = x.required_str("id")?;
    let row = Experience {
        id: id.to_owned(),
        kind: x.string("type"),
        state: x.string("state"),
        name: x.string("name"),
        description: x.string("description"),
        created_at: x.ts("created_at").map(Ts),
        updated_at: x.ts("updated_at").map(Ts),
        tag_ids_json: x.json("tag_ids"),
        media_json: x.json("media"),
        metadata_json: x.json("metadata"),
    };
    Ok(Parsed::new(row, id).walked_by(x.ts("created_at"), x.ts("updated_at")))
}
