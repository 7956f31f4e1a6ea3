//! `GET /v1/marketing-consents` → `marketing_consents`. Consents have no timestamps, so every
//! run scans them all; legacy consents have no `id` and are keyed by (company, email, source).

use serde_json::value::RawValue;

use super::{Item, json, opt_text, row, text, typed};
use crate::api::types::MarketingConsent;
use crate::store::Table;

pub fn parse(raw: &RawValue) -> Result<Item, String> {
    let c: MarketingConsent = typed(raw)?;
    let key = c.natural_key();
    let cols = vec![
        (":id", opt_text(c.id.as_deref())),
        (":company_id", text(&c.company_id)),
        (":full_name", text(&c.full_name)),
        (":email", text(&c.email)),
        (":source", text(&c.source)),
        (":references_json", json(c.references.as_ref())),
    ];
    Ok(Item {
        row: row(
            Table::MarketingConsents,
            vec![(":consent_key", text(&key))],
            cols,
            raw,
        ),
        key,
        created_at: None,
        updated_at: None,
    })
}
