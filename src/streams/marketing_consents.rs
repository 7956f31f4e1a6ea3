//! `GET /v1/marketing-consents` → `marketing_consents`. Consents have no timestamps, so every
//! run scans them all. Legacy consents have no `id` and are keyed by (company, email, source);
//! a consent with neither an id nor that triple cannot be stored and is quarantined.
//! `references` is kept as JSON whatever its shape: the docs never captured its elements.

use serde::Serialize;

use super::read::Fields;
use super::stream::{At, Mode, Parsed, Stream};

pub(crate) static STREAM: Stream = Stream {
    name: "marketing_consents",
    path: "v1/marketing-consents",
    scope: "marketing.read",
    mode: Mode::Scan,
    enabled_by_default: true,
    webhook: None,
    parse,
};

/// The consent's identity in the store: `id` when the API sends one, else the
/// (`company_id`, `email`, `source`) triple that legacy rows are unique on (`docs/understory-api.md` §6.12).
pub(crate) fn key(c: Fields<'_>) -> Result<String, String> {
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

#[derive(Debug, Serialize)]
struct Consent {
    consent_key: String,
    id: Option<String>,
    company_id: Option<String>,
    full_name: Option<String>,
    email: Option<String>,
    source: Option<String>,
    references_json: Option<String>,
}

fn parse(_: At<'_>, c: Fields<'_>) -> Result<Parsed, String> {
    let key = key(c)?;
    let row = Consent {
        consent_key: key.clone(),
        id: c.string("id").filter(|s| !s.is_empty()),
        company_id: c.string("company_id"),
        full_name: c.string("full_name"),
        email: c.string("email"),
        source: c.string("source"),
        references_json: c.json("references"),
    };
    Ok(Parsed::new(row, key))
}
