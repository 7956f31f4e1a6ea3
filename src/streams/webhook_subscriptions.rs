//! `GET /v1/webhook-subscriptions` → `webhook_subscriptions`: which webhooks the account has,
//! read-only. The list takes no sort and no filter, so the stream scans it each run and confirms
//! a subscription it no longer lists by `GET …/{id}` (404). Only `id` is required. The signing
//! `secret` is sent only when a subscription is created; should a list ever carry one, it is
//! stored redacted like every secret-named field (`super::redact`).

use serde::Serialize;

use super::read::Fields;
use super::stream::{At, Mode, Parsed, Stream};
use crate::store::Ts;

pub(crate) static STREAM: Stream = Stream {
    name: "webhook_subscriptions",
    path: "v1/webhook-subscriptions",
    scope: "webhook.read",
    mode: Mode::Scan,
    enabled_by_default: false,
    webhook: None,
    parse,
};

#[derive(Debug, Serialize)]
struct WebhookSubscription {
    id: String,
    url: Option<String>,
    state: Option<String>,
    event_types_json: Option<String>,
    description: Option<String>,
    created_at: Option<Ts>,
    updated_at: Option<Ts>,
    metadata_json: Option<String>,
}

fn parse(_: At<'_>, w: Fields<'_>) -> Result<Parsed, String> {
    let id = w.required_str("id")?;
    let row = WebhookSubscription {
        id: id.to_owned(),
        url: w.string("url"),
        state: w.string("state"),
        event_types_json: w.json("event_types"),
        description: w.string("description"),
        created_at: w.ts("created_at").map(Ts),
        updated_at: w.ts("updated_at").map(Ts),
        metadata_json: w.json("metadata"),
    };
    Ok(Parsed::new(row, id))
}
