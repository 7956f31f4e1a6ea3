//! The API calls behind `webhooks register|list|unregister` (`/v1/webhook-subscriptions`,
//! scopes `webhook.read` and `webhook.write`; Understory's *Webhooks* reference,
//! `docs/understory-api.md` §1 and §2). The signing secret comes once, in the answer to the create: it is handed to the
//! caller as a `SecretString` and stored sealed before anything is printed.

use secrecy::SecretString;
use serde::Deserialize;

use crate::api::types::Page;
use crate::api::{self, ApiClient, Stats};
use crate::streams::Stream;

/// The scopes these calls need.
pub const SCOPES: [&str; 2] = ["webhook.read", "webhook.write"];

const PATH: &str = "v1/webhook-subscriptions";

/// A subscription as the API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub state: String,
}

/// The create answer: the subscription and, this once, its secret.
#[derive(Deserialize)]
struct Created {
    #[serde(flatten)]
    subscription: Subscription,
    secret: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Api(#[from] api::Error),
    #[error("the API's answer to {what} is not a subscription: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("the API created subscription {0} without sending its signing secret")]
    NoSecret(String),
    #[error("the subscriptions list pages past {0} pages; report it to Understory")]
    TooManyPages(usize),
}

/// The event types of the enabled streams, each once, in stream order.
pub fn event_types(enabled: &[&'static Stream]) -> Vec<&'static str> {
    enabled
        .iter()
        .filter_map(|s| s.webhook)
        .flat_map(|w| w.types.iter().copied())
        .collect()
}

/// Every subscription of the account.
pub async fn list(api: &ApiClient, stats: &Stats) -> Result<Vec<Subscription>, Error> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut query = vec![("limit", "100".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page: Page<Subscription> = api.get(stats, PATH, &query).await?;
        all.extend(page.items);
        match page.next.filter(|n| !n.is_empty()) {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok(all),
        }
    }
    Err(Error::TooManyPages(100))
}

/// Creates a subscription of `url` to `types`: the subscription and its secret.
pub async fn create(
    api: &ApiClient,
    stats: &Stats,
    url: &str,
    types: &[&str],
) -> Result<(Subscription, SecretString), Error> {
    let answer = api
        .send(stats, reqwest::Method::POST, PATH, Some(&body(url, types)))
        .await?;
    let created: Created = serde_json::from_slice(&answer).map_err(|e| Error::Malformed {
        what: "the create",
        detail: e.to_string(),
    })?;
    let secret = created
        .secret
        .ok_or_else(|| Error::NoSecret(crate::http::printable(&created.subscription.id, 100)))?;
    Ok((created.subscription, secret))
}

/// Replaces subscription `id`'s URL and types (the PUT replaces the whole), enabled.
pub async fn update(
    api: &ApiClient,
    stats: &Stats,
    id: &str,
    url: &str,
    types: &[&str],
) -> Result<Subscription, Error> {
    let answer = api
        .send(
            stats,
            reqwest::Method::PUT,
            &item_path(id),
            Some(&body(url, types)),
        )
        .await?;
    serde_json::from_slice(&answer).map_err(|e| Error::Malformed {
        what: "the update",
        detail: e.to_string(),
    })
}

/// Deletes subscription `id`; a 404 means it was gone already, which is what was asked.
pub async fn delete(api: &ApiClient, stats: &Stats, id: &str) -> Result<(), Error> {
    match api
        .send(stats, reqwest::Method::DELETE, &item_path(id), None)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The body of a create and of an update (a PUT replaces the whole): enabled, for `types`.
fn body(url: &str, types: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "url": url,
        "event_types": types,
        "state": "ENABLED",
        "description": "understory-sync receiver",
    })
}

fn item_path(id: &str) -> String {
    let mut path = url::Url::parse("http://x/").expect("a valid base");
    path.path_segments_mut()
        .expect("an http URL has segments")
        .extend(["v1", "webhook-subscriptions", id]);
    path.path().trim_start_matches('/').to_owned()
}
