//! `GET /v1/webhook-subscriptions` (and `/{id}`): no sort, no filter, `webhook.read`. A few
//! subscriptions; now and then one is switched on or off, one deleted (it leaves the list and
//! its id answers 404) and one created. The signing `secret` is never listed (it is sent only
//! in the answer to a create).

use serde_json::{Value, json};

use super::{List, Range, Resource, Shape, Step};
use crate::sandbox::world::{self, Kind, Rng, Table, World, make_id, ts};

const STREAM: &str = "webhook_subscriptions";

pub static RESOURCE: Resource = Resource {
    stream: STREAM,
    scope: "webhook.read",
    shape: Shape::List(List {
        path: "/v1/webhook-subscriptions",
        max_limit: 100,
        sortable: false,
        range: Range::None,
        localized: false,
        select: |w, s| world::slice(&listed(w), s.pos, s.limit),
        render: |w, i, _| w.webhook_subscription(i),
        find: |w, id| table(w).find(w.seed(), Kind::WebhookSubscription, id),
        key: |_, _, v| world::id_key(v),
    }),
    generate: Some(generate),
    mutate: Some(mutate),
};

const EVENT_TYPES: [&str; 4] = [
    "v1.booking.created",
    "v1.booking.updated",
    "v1.booking.cancelled",
    "v1.event.updated",
];

fn table(w: &World) -> &Table {
    static NONE: std::sync::LazyLock<Table> = std::sync::LazyLock::new(Table::default);
    w.own.get(STREAM).unwrap_or(&NONE)
}

/// Subscriptions not deleted, oldest first.
fn listed(w: &World) -> Vec<u32> {
    table(w).live().collect()
}

/// Two to four subscriptions, made in the world's first month.
fn generate(w: &mut World) {
    let count = 2 + w.seed() % 3;
    let t = w.own.entry(STREAM).or_default();
    for i in 0..count as i64 {
        let created = world::START - world::HISTORY + i * 7 * 86_400;
        t.push(created, created + 3_600);
    }
}

fn mutate(w: &mut World, step: &mut Step) {
    let live = listed(w);
    let toggle = step.r.chance(0.3).then(|| step.r.below(live.len() as u64) as usize);
    let delete = step.r.chance(0.1).then(|| step.r.below(live.len() as u64) as usize);
    let create = step.r.chance(0.15);
    let at = step.moment();
    let t = w.own.entry(STREAM).or_default();
    if let Some(&i) = toggle.and_then(|k| live.get(k)) {
        t.touch(i as usize, at);
    }
    if let Some(&i) = delete.and_then(|k| live.get(k)) {
        t.gone.insert(i);
    }
    if create {
        t.push(at, at);
    }
}

impl World {
    /// Subscription `i`: its state flips with each change.
    pub(crate) fn webhook_subscription(&self, i: usize) -> Value {
        let t = table(self);
        let version = t.version[i];
        let mut r = Rng::new(&[self.seed(), Kind::WebhookSubscription as u64, i as u64]);
        let types: Vec<&str> = EVENT_TYPES
            .iter()
            .copied()
            .filter(|_| r.chance(0.6))
            .collect();
        let mut s = json!({
            "id": make_id(self.seed(), Kind::WebhookSubscription, i as u64),
            "url": format!("https://hooks.example.org/understory/{i}"),
            "event_types": if types.is_empty() { vec![EVENT_TYPES[0]] } else { types },
            "state": if version.is_multiple_of(2) { "ENABLED" } else { "DISABLED" },
            "created_at": ts(t.created[i]),
            "updated_at": ts(t.updated[i]),
        });
        // The first always has both, so a copy's columns for them are never all empty.
        if i == 0 || r.chance(0.5) {
            s["description"] = json!(format!("Booking feed {i}"));
        }
        if i == 0 || r.chance(0.3) {
            s["metadata"] = json!({"team": "data"});
        }
        let mut s = self.finish(s, &["description", "metadata"], &[self.seed(), 17, i as u64, u64::from(version)]);
        // With variants on, now and then one is listed without its id from birth.
        if self.broken(Kind::WebhookSubscription, i, 0) {
            world::remove(&mut s, "id");
        }
        s
    }
}
