//! `GET /v1/webhook-subscriptions` (and `/{id}`): no sort, no filter, `webhook.read`. A few
//! generated subscriptions; now and then one is switched on or off, one deleted (it leaves the
//! list and its id answers 404) and one created. Those created through the API
//! (`crate::webhooks::subscriptions`) follow them in the list, as their client set them. The
//! signing `secret` is never listed (it is sent only in the answer to a create).

use serde_json::{Value, json};

use super::{List, Range, Resource, Shape};
use crate::world::Step;
use crate::world::hooks::Hooks;
use crate::world::{self, Kind, Rng, Table, World, make_id, parse_id, ts};

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
        select: |w, s| {
            let all: Vec<u32> = listed(w).into_iter().chain(w.live_hooks()).collect();
            world::slice(&all, s.pos, s.limit)
        },
        render: |w, i, _| w.webhook_subscription(i),
        find: World::find_subscription,
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

/// Generated subscriptions not deleted, oldest first.
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
    /// The list row of subscription `id`, generated or created, if it is live.
    pub(crate) fn find_subscription(&self, id: &str) -> Option<usize> {
        let i = parse_id(self.seed(), Kind::WebhookSubscription, id)? as usize;
        match Hooks::slot(i) {
            Some(k) => (k < self.hooks.specs.len() && !self.hooks.table.gone.contains(&(k as u32))).then_some(i),
            None => table(self).find(self.seed(), Kind::WebhookSubscription, id),
        }
    }

    /// Deletes the subscription at list row `i`, generated or created.
    pub(crate) fn delete_subscription(&mut self, i: usize) {
        match Hooks::slot(i) {
            Some(k) => self.delete_hook(k),
            None => {
                self.own.entry(STREAM).or_default().gone.insert(i as u32);
            }
        }
    }

    /// Whether a live subscription other than list row `except` has exactly `url`.
    pub(crate) fn subscription_url_taken(&self, url: &str, except: Option<usize>) -> bool {
        listed(self)
            .into_iter()
            .chain(self.live_hooks())
            .filter(|&i| Some(i as usize) != except)
            .any(|i| self.subscription_url(i as usize) == url)
    }

    fn subscription_url(&self, i: usize) -> String {
        match Hooks::slot(i) {
            Some(k) => self.hooks.specs[k].url.clone(),
            None => format!("https://hooks.example.org/understory/{i}"),
        }
    }

    /// Subscription at list row `i`: a generated one, whose state flips with each change, or
    /// one created through the API, as its client last set it.
    pub(crate) fn webhook_subscription(&self, i: usize) -> Value {
        if let Some(k) = Hooks::slot(i) {
            return self.created_subscription(i, k);
        }
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
            "url": self.subscription_url(i),
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

impl World {
    /// Created subscription `k` (list row `i`), without its secret.
    fn created_subscription(&self, i: usize, k: usize) -> Value {
        let t = &self.hooks.table;
        let spec = &self.hooks.specs[k];
        let mut s = json!({
            "id": make_id(self.seed(), Kind::WebhookSubscription, i as u64),
            "url": spec.url,
            "event_types": spec.event_types,
            "state": if spec.enabled { "ENABLED" } else { "DISABLED" },
            "created_at": ts(t.created[k]),
            "updated_at": ts(t.updated[k]),
        });
        if let Some(d) = &spec.description {
            s["description"] = json!(d);
        }
        if let Some(m) = &spec.metadata {
            s["metadata"] = m.clone();
        }
        self.finish(s, &["description", "metadata"], &[self.seed(), 17, i as u64, u64::from(t.version[k])])
    }
}
