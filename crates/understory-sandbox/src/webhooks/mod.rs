//! The sandbox as a webhook sender: subscriptions created through its API receive events when
//! bookings, events and experiences change, as Understory's *Webhooks* guide describes
//! (`docs/understory-api.md` §2, *Webhook deliveries*).
//!
//! Each change becomes one thin event, `{id, type, timestamp, payload}`, POSTed to every
//! enabled subscription created through `POST /v1/webhook-subscriptions` that asked for its
//! type, and signed the Standard Webhooks way (`signature`). The generated subscriptions point at
//! `hooks.example.org` and are never sent anything. Events are worked out under the world's
//! write lock (`changes`) and sent after it is released, so a `GET` of the item already shows
//! the change; each copy is a task of its own (`courier`), retried on a schedule, so sending
//! never holds up the API or the world. On request it misbehaves as a real sender may
//! (`WebhookConfig`): duplicates, late deliveries overtaken by later ones, events never sent.

pub(crate) mod changes;
mod courier;
mod log;
pub mod signature;
pub(crate) mod subscriptions;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::config::WebhookConfig;
use super::world::hooks::Target;
use super::world::{Rng, mix};
use changes::Change;
pub use log::{Attempt, Delivery};

/// Every event type a subscription may ask for (`docs/understory-api.md` §2).
pub const EVENT_TYPES: [&str; 11] = [
    "v1.booking.created",
    "v1.booking.updated",
    "v1.booking.cancelled",
    "v1.event.created",
    "v1.event.updated",
    "v1.event.cancelled",
    "v1.event.completed",
    "v1.event.deleted",
    "v1.experience.created",
    "v1.experience.updated",
    "v1.experience.deleted",
];

/// How long one attempt may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts in flight at once, over all subscriptions: enough that a slow receiver does not
/// hold up the others, few enough that a step of thousands of changes does not open thousands
/// of connections.
const MAX_IN_FLIGHT: usize = 64;

/// Sends events and keeps the log of what it sent.
pub(crate) struct Sender {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    config: WebhookConfig,
    seed: u64,
    client: reqwest::Client,
    /// Where delivery tasks run: the sandbox's runtime, also when a change comes from a thread
    /// outside it.
    runtime: tokio::runtime::Handle,
    in_flight: tokio::sync::Semaphore,
    /// Events made so far: numbers their ids and the draws of their misbehaviour.
    events: AtomicU64,
    log: log::Log,
    /// Set when the sandbox stops: no attempt starts after it.
    stopped: AtomicBool,
}

impl Sender {
    pub(crate) fn new(seed: u64, config: WebhookConfig, runtime: tokio::runtime::Handle) -> Self {
        // Receivers are on the local network or loopback: a proxy from the environment would
        // only get in the way.
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .user_agent("understory-sync-sandbox-webhooks")
            .build()
            .expect("an HTTP client without TLS settings builds");
        Self {
            inner: Arc::new(Inner {
                config,
                seed,
                client,
                runtime,
                in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
                events: AtomicU64::new(0),
                log: log::Log::default(),
                stopped: AtomicBool::new(false),
            }),
        }
    }

    /// Sends each change to every target that asked for its type; call it after releasing the
    /// world's lock. Drawn per delivery from the seed and the event's number: dropped,
    /// duplicated or delayed.
    pub(crate) fn send(&self, changes: Vec<Change>, targets: &[Target]) {
        if targets.is_empty() {
            return;
        }
        let emitted_at = SystemTime::now();
        let timestamp = DateTime::<Utc>::from(emitted_at).to_rfc3339_opts(SecondsFormat::Nanos, true);
        let cfg = &self.inner.config;
        for change in changes {
            let n = self.inner.events.fetch_add(1, Ordering::Relaxed);
            let webhook_id = format!("evt_{:016x}{:06x}", mix(self.inner.seed ^ mix(n)), n);
            let body = body(&webhook_id, change.event_type, &timestamp, &change.payload);
            for t in targets
                .iter()
                .filter(|t| t.event_types.iter().any(|e| e == change.event_type))
            {
                let mut r = Rng::new(&[self.inner.seed, 0x0077_6562_686f_6f6b, n, t.k as u64]);
                let dropped = r.chance(cfg.drop_share);
                let duplicated = r.chance(cfg.duplicate_share) && !dropped;
                let delayed = r.chance(cfg.delay_share) && !dropped;
                let slot = self.inner.log.push(Delivery {
                    webhook_id: webhook_id.clone(),
                    event_type: change.event_type.to_owned(),
                    subscription_id: t.id.clone(),
                    item_id: change.item_id.clone(),
                    emitted_at,
                    dropped,
                    duplicated,
                    delayed,
                    attempts: Vec::new(),
                    delivered: 0,
                    given_up: 0,
                });
                if dropped {
                    continue;
                }
                let key = signature::key(&t.secret).expect("the sandbox makes well-formed secrets");
                let delay = Duration::from_millis(if delayed { cfg.delay_ms } else { 0 });
                for copy in 0..if duplicated { 2 } else { 1 } {
                    let parcel = courier::Parcel {
                        slot,
                        copy,
                        webhook_id: webhook_id.clone(),
                        url: t.url.clone(),
                        key: key.clone(),
                        body: body.clone(),
                        delay,
                    };
                    self.inner
                        .runtime
                        .spawn(courier::carry(Arc::clone(&self.inner), parcel));
                }
            }
        }
    }

    /// Every delivery so far, in the order the events arose.
    pub(crate) fn log(&self) -> Vec<Delivery> {
        self.inner.log.all()
    }

    /// Starts no attempt from now on (the sandbox stopped).
    pub(crate) fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
    }
}

/// A thin event's JSON text, its keys in the order the *Webhooks* guide shows them (`id`,
/// `type`, `timestamp`, `payload`), which a `Value` would sort.
fn body(id: &str, event_type: &str, timestamp: &str, payload: &Value) -> String {
    let text = |s: &str| Value::from(s).to_string();
    format!(
        "{{\"id\":{},\"type\":{},\"timestamp\":{},\"payload\":{payload}}}",
        text(id),
        text(event_type),
        text(timestamp)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_json_in_the_guides_order() {
        let payload = serde_json::json!({"experience_id": "x\"1"});
        let text = body(
            "evt_1",
            "v1.experience.updated",
            "2026-01-01T00:00:00.000000001Z",
            &payload,
        );
        assert!(text.starts_with(r#"{"id":"evt_1","type":"v1.experience.updated","timestamp":"#));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["payload"], payload);
    }
}
