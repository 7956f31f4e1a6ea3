//! `GET /v1/marketing-consents` → `marketing_consents`. Consents have no timestamps, so every
//! run scans them all. Legacy consents have no `id` and are keyed by (company, email, source);
//! a consent with neither an id nor that triple cannot be stored and is quarantined.
//! `references` is kept as JSON whatever its shape: the docs never captured its elements.

use serde_json::value::RawValue;

use super::read::Fields;
use super::{Item, Mode, Stream, item, opt_json, opt_text, row, text};

/// The consent's identity in the store: `id` when the API sends one, else the
/// (`company_id`, `email`, `source`) triple that legacy rows are unique on (§6.12).
pub fn key(c: Fields<'_>) -> Result<String, String> {
    if let Some(id) = c.str("id").filter(|s| !s.is_empty()) {
        return Ok(format!("id:{id}"));
    }
    let part = |k: &str| {
        c.str(k)
            .ok_or_else(|| format!("a consent without `id` needs `{k}` to be told apart"))
    };
    Ok(format!(
        "legacy:{}\u{1f}{}\u{1f}{}",
        part("company_id")?,
        part("email")?,
        part("source")?
    ))
}

pub static STREAM: Stream = Stream {
    name: "marketing_consents",
    path: "v1/marketing-consents",
    scope: "marketing.read",
    mode: Mode::Scan,
    enabled_by_default: true,
    parse,
    children: &[],
};

pub fn parse(raw: &RawValue) -> Result<Item, String> {
    item(raw, |c| {
        let key = key(c)?;
        let cols = vec![
            (":id", opt_text(c.str("id").filter(|s| !s.is_empty()))),
            (":company_id", opt_text(c.str("company_id"))),
            (":full_name", opt_text(c.str("full_name"))),
            (":email", opt_text(c.str("email"))),
            (":source", opt_text(c.str("source"))),
            (":references_json", opt_json(c.json("references"))),
        ];
        Ok(Item {
            row: row(STREAM.name, vec![(":consent_key", text(&key))], cols, raw),
            key,
            created_at: None,
            updated_at: None,
        })
    })
}
