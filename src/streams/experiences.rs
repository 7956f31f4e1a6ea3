//! `GET /v1/experiences` → `experiences`, named in `api.accept_language`.

use serde_json::value::RawValue;

use super::{Item, json, opt_text, row, text, ts, typed};
use crate::api::types::Experience;
use crate::store::Table;

pub fn parse(raw: &RawValue) -> Result<Item, String> {
    let x: Experience = typed(raw)?;
    let cols = vec![
        (":type", text(&x.kind)),
        (":state", text(&x.state)),
        (":name", text(&x.name)),
        (":description", opt_text(x.description.as_deref())),
        (":created_at", ts(x.created_at)),
        (":updated_at", ts(x.updated_at)),
        (":tag_ids_json", json(x.tag_ids.as_ref())),
        (":media_json", json(x.media.as_ref())),
        (":metadata_json", json(x.metadata.as_ref())),
    ];
    Ok(Item {
        row: row(Table::Experiences, vec![(":id", text(&x.id))], cols, raw),
        key: x.id,
        created_at: Some(x.created_at),
        updated_at: Some(x.updated_at),
    })
}
