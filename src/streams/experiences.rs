//! `GET /v1/experiences` → `experiences`, named in `api.accept_language`; only `id` is required.

use serde_json::value::RawValue;

use super::{Item, Mode, Stream, item, opt_json, opt_text, opt_ts, row, text};

pub static STREAM: Stream = Stream {
    name: "experiences",
    path: "v1/experiences",
    scope: "experience.read",
    mode: Mode::Scan,
    enabled_by_default: false,
    parse,
    children: &[],
};

pub fn parse(raw: &RawValue) -> Result<Item, String> {
    item(raw, |x| {
        let id = x.required_str("id")?;
        let cols = vec![
            (":type", opt_text(x.str("type"))),
            (":state", opt_text(x.str("state"))),
            (":name", opt_text(x.str("name"))),
            (":description", opt_text(x.str("description"))),
            (":created_at", opt_ts(x.ts("created_at"))),
            (":updated_at", opt_ts(x.ts("updated_at"))),
            (":tag_ids_json", opt_json(x.json("tag_ids"))),
            (":media_json", opt_json(x.json("media"))),
            (":metadata_json", opt_json(x.json("metadata"))),
        ];
        Ok(Item {
            row: row(STREAM.name, vec![(":id", text(id))], cols, raw),
            key: id.to_owned(),
            created_at: x.ts("created_at"),
            updated_at: x.ts("updated_at"),
        })
    })
}
