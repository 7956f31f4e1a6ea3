//! What a delivery's body says: a thin event `{id, type, timestamp, payload}` whose payload
//! names the item by id (Understory's *Webhooks* guide; `docs/understory-api.md` §2, "Webhook deliveries"). The body is
//! the sender's text: everything here is checked before it is trusted, and nothing of it is
//! logged.

use serde::Deserialize;

use crate::streams::{self, Stream};

/// The longest item id taken from a payload: ids are short; a longer one is hostile.
const MAX_ID_CHARS: usize = 200;

/// A delivery's event, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) event_type: String,
    /// The enabled stream that stores items of this type; `None`: the event is recorded and
    /// ignored (a stream switched off, or a type added to the API since).
    pub(crate) stream: Option<&'static Stream>,
    pub(crate) item_id: Option<String>,
    pub(crate) timestamp: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    event_type: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    timestamp: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    payload: serde_json::Map<String, serde_json::Value>,
}

/// Reads a body; an error says what is wrong in words that quote nothing of it.
pub(crate) fn read(body: &[u8], enabled: &[&'static Stream]) -> Result<Event, &'static str> {
    let env: Envelope<'_> =
        serde_json::from_slice(body).map_err(|_| "the body is not an event (JSON with a string `type`)")?;
    if env.event_type.is_empty() || env.event_type.len() > 100 || env.event_type.chars().any(char::is_control)
    {
        return Err("the event's `type` is not an event type");
    }
    let stream = streams::by_event(enabled, &env.event_type);
    let item_id = match stream.and_then(|s| s.webhook) {
        Some(w) => Some(
            env.payload
                .get(w.id_field)
                .and_then(|v| v.as_str())
                .filter(|id| plausible_id(id))
                .ok_or("the payload does not name its item by a plain id")?
                .to_owned(),
        ),
        None => None,
    };
    let timestamp = env
        .timestamp
        .filter(|t| t.len() <= 64 && !t.chars().any(char::is_control))
        .map(|t| t.into_owned());
    Ok(Event {
        event_type: env.event_type.into_owned(),
        stream,
        item_id,
        timestamp,
    })
}

/// Whether `id` may name an item: not empty, not long, no control characters, and no path of
/// its own (`/`, `.`, `..`), so it can only ever be one escaped path segment of a by-id request.
fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && !id.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        && id != "."
        && id != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> Vec<&'static Stream> {
        streams::ALL.to_vec()
    }

    #[test]
    fn a_booking_event_names_its_stream_and_id() {
        let body = br#"{"id":"evt_1","type":"v1.booking.updated","timestamp":"2026-12-07T10:00:00.123456789Z","payload":{"booking_id":"b-1","event_id":"e","experience_id":"x","host_id":"h"}}"#;
        let e = read(body, &enabled()).unwrap();
        assert_eq!(e.stream.unwrap().name, "bookings");
        assert_eq!(e.item_id.as_deref(), Some("b-1"));
        assert_eq!(e.timestamp.as_deref(), Some("2026-12-07T10:00:00.123456789Z"));
    }

    #[test]
    fn a_type_no_enabled_stream_has_is_read_and_ignored() {
        let body = br#"{"id":"evt_1","type":"v1.gift_card.created","payload":{"x":1}}"#;
        let e = read(body, &enabled()).unwrap();
        assert!(e.stream.is_none() && e.item_id.is_none());
        let body = br#"{"type":"v1.booking.created","payload":{"booking_id":"b"}}"#;
        assert!(read(body, &[]).unwrap().stream.is_none(), "bookings off");
    }

    #[test]
    fn hostile_bodies_are_refused() {
        for body in [
            &b"not json"[..],
            br#"{"payload":{}}"#,
            br#"{"type":"v1.booking.updated","payload":{}}"#,
            br#"{"type":"v1.booking.updated","payload":{"booking_id":"../../v1/orders"}}"#,
            br#"{"type":"v1.booking.updated","payload":{"booking_id":".."}}"#,
            br#"{"type":"v1.booking.updated","payload":{"booking_id":""}}"#,
            br#"{"type":"v1.booking.updated","payload":{"booking_id":7}}"#,
            br#"{"type":"v1.booking.updated","payload":{"booking_id":"a\nb"}}"#,
            br#"{"type":"","payload":{}}"#,
        ] {
            assert!(
                read(body, &enabled()).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let long = format!(
            r#"{{"type":"v1.event.updated","payload":{{"event_id":"{}"}}}}"#,
            "a".repeat(201)
        );
        assert!(read(long.as_bytes(), &enabled()).is_err());
    }
}
