//! Creating, replacing and deleting webhook subscriptions (`POST /v1/webhook-subscriptions`,
//! `PUT` and `DELETE …/{id}`, scope `webhook.write`): checks the body as the API does and
//! changes the world. The routes (`super::super::routes`) admit the request and turn the
//! answer into HTTP.

use crate::poison::UnpoisonedRw as _;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::EVENT_TYPES;
use crate::State;
use crate::world::World;
use crate::world::hooks::{Hooks, Spec};

/// Why a write was refused: the status and the API's error `code` and `message` (`docs/understory-api.md` §4).
#[derive(Debug)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        code: "BAD_REQUEST",
        message: message.into(),
    }
}

fn not_found(id: &str) -> Refusal {
    Refusal {
        status: StatusCode::NOT_FOUND,
        code: "NOT_FOUND",
        message: format!("no such resource: {id}"),
    }
}

fn conflict(message: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::CONFLICT,
        code: "CONFLICT",
        message: message.into(),
    }
}

/// `POST`: a new subscription, answered with its `secret` (the only answer that carries it).
pub(crate) fn create(state: &State, body: &[u8]) -> Result<Value, Refusal> {
    let spec = parse(body)?;
    let mut w = state.world.write_locked();
    taken(&w, &spec.url, None)?;
    let i = w.create_hook(spec);
    state.rendered.clear();
    let mut answer = w.webhook_subscription(i);
    let k = Hooks::slot(i).expect("a created subscription's row");
    answer["secret"] = json!(w.hooks.secrets[k]);
    Ok(answer)
}

/// `PUT`: replaces every field of a subscription created through the API.
pub(crate) fn replace(state: &State, id: &str, body: &[u8]) -> Result<Value, Refusal> {
    let spec = parse(body)?;
    let mut w = state.world.write_locked();
    let i = w.find_subscription(id).ok_or_else(|| not_found(id))?;
    // The generated subscriptions are drawn from the seed, with no stored fields to replace.
    let k = Hooks::slot(i).ok_or_else(|| {
        conflict("the sandbox's generated subscriptions are read-only; create one with POST")
    })?;
    taken(&w, &spec.url, Some(i))?;
    w.replace_hook(k, spec);
    state.rendered.clear();
    Ok(w.webhook_subscription(i))
}

/// `DELETE`: the subscription leaves the list, its id answers 404, and it is sent nothing more.
pub(crate) fn delete(state: &State, id: &str) -> Result<(), Refusal> {
    let mut w = state.world.write_locked();
    let i = w.find_subscription(id).ok_or_else(|| not_found(id))?;
    w.delete_subscription(i);
    state.rendered.clear();
    Ok(())
}

/// 409 when another live subscription already has `url`.
fn taken(w: &World, url: &str, except: Option<usize>) -> Result<(), Refusal> {
    if w.subscription_url_taken(url, except) {
        Err(conflict(format!("a subscription for '{url}' already exists")))
    } else {
        Ok(())
    }
}

/// A create's or replace's body: `{url, event_types[], state?, description?, metadata?}`.
fn parse(body: &[u8]) -> Result<Spec, Refusal> {
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let Value::Object(m) = value else {
        return Err(bad("the body must be a JSON object"));
    };
    Ok(Spec {
        url: url(&m)?,
        event_types: event_types(&m)?,
        enabled: match m.get("state") {
            None | Some(Value::Null) => true,
            Some(s) if s == "ENABLED" => true,
            Some(s) if s == "DISABLED" => false,
            Some(s) => return Err(bad(format!("state must be ENABLED or DISABLED, got {s}"))),
        },
        description: match m.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(d.clone()),
            Some(_) => return Err(bad("description must be a string")),
        },
        metadata: match m.get("metadata") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(bad("metadata must be an object")),
        },
    })
}

fn url(m: &Map<String, Value>) -> Result<String, Refusal> {
    let raw = m
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("url is required"))?;
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(raw.to_owned()),
        _ => Err(bad(format!(
            "url must be an absolute http or https URL, got '{raw}'"
        ))),
    }
}

/// At least one, each a documented type; repeats are kept once.
fn event_types(m: &Map<String, Value>) -> Result<Vec<String>, Refusal> {
    let list = m
        .get("event_types")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("event_types is required: a list of event types"))?;
    if list.is_empty() {
        return Err(bad("event_types must name at least one event type"));
    }
    let mut types: Vec<String> = Vec::new();
    for t in list {
        match t.as_str() {
            Some(t) if EVENT_TYPES.contains(&t) => {
                if !types.iter().any(|have| have == t) {
                    types.push(t.to_owned());
                }
            }
            _ => {
                return Err(bad(format!(
                    "unknown event type {t}; use one of {}",
                    EVENT_TYPES.join(", ")
                )));
            }
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: Value) -> Result<Spec, Refusal> {
        parse(body.to_string().as_bytes())
    }

    #[test]
    fn a_body_needs_an_http_url_and_known_event_types() {
        let ok =
            parsed(json!({"url": "http://127.0.0.1:9/h", "event_types": ["v1.booking.created"]})).unwrap();
        assert!(ok.enabled);
        for bad in [
            json!({"event_types": ["v1.booking.created"]}),
            json!({"url": "ftp://x/h", "event_types": ["v1.booking.created"]}),
            json!({"url": "not a url", "event_types": ["v1.booking.created"]}),
            json!({"url": "http://x/h", "event_types": []}),
            json!({"url": "http://x/h", "event_types": ["v1.order.created"]}),
            json!({"url": "http://x/h", "event_types": ["v1.booking.created"], "state": "ON"}),
            json!({"url": "http://x/h", "event_types": ["v1.booking.created"], "metadata": 3}),
            json!([]),
        ] {
            let r = parsed(bad.clone()).unwrap_err();
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
