//! `GET /v1/events` (and `/v1/events/{id}`): no sort; `from`/`to` filter the first session's
//! local start. Each step changes the capacity of a share of events.

use serde_json::{Value, json};

use super::{List, Range, Resource, Shape};
use crate::world::{Selection, Step};
use crate::world::local;
use crate::world::{self, Kind, Rng, World, make_id, ts};

pub static RESOURCE: Resource = Resource {
    stream: "events",
    scope: "event.read",
    shape: Shape::List(List {
        path: "/v1/events",
        max_limit: 500,
        sortable: false,
        range: Range::LocalStart,
        localized: false,
        select,
        render: |w, k, _| w.event(k),
        find: |w, id| w.events.find(w.seed(), Kind::Event, id),
        key: |_, _, v| world::id_key(v),
    }),
    generate: Some(generate),
    mutate: Some(mutate),
};

/// A year of events, evenly spread, each updated within ten days.
fn generate(w: &mut World) {
    let n = i64::from(w.data.events.max(1));
    for k in 0..w.data.events {
        let mut r = Rng::new(&[w.seed, Kind::Event as u64, u64::from(k)]);
        let created = world::START - world::HISTORY + i64::from(k) * world::HISTORY / n;
        w.events
            .push(created, (created + r.below(10 * 86_400) as i64).min(world::START));
    }
}

/// Events in creation order, those whose first session starts in `[from, to)` when filtered.
fn select(w: &World, s: &Selection) -> (Vec<u32>, bool) {
    if s.from.is_none() && s.to.is_none() {
        return world::range_slice(0..w.events.len(), false, s.pos, s.limit);
    }
    let hits: Vec<u32> = (0..w.events.len() as u32)
        .filter(|&k| {
            let start = w.event_start(k as usize);
            s.from.is_none_or(|f| start >= f) && s.to.is_none_or(|t| start < t)
        })
        .collect();
    world::slice(&hits, s.pos, s.limit)
}

fn mutate(w: &mut World, step: &mut Step) {
    let events = w.events.len();
    if events > 0 {
        for _ in 0..step.share(events, step.cfg.update_share) {
            let k = step.r.below(events as u64) as usize;
            let at = step.moment();
            w.events.touch(k, at);
        }
    }
}

impl World {
    /// The first session's local start: a whole hour between 08:00 and 17:00, 1–60 days after
    /// the event was created.
    pub(crate) fn event_start(&self, k: usize) -> i64 {
        let mut r = Rng::new(&[self.seed, Kind::Event as u64, k as u64, 2]);
        let day = self.events.created[k] + (1 + r.below(60) as i64) * 86_400;
        day - day.rem_euclid(86_400) + (8 + r.below(10) as i64) * 3_600
    }

    pub(crate) fn event(&self, k: usize) -> Value {
        let v = self.events.version[k];
        let mut r = Rng::new(&[self.seed, Kind::Event as u64, k as u64, 4]);
        let total = 10 + r.below(50) as i64;
        let reserved = (r.below(total as u64) as i64 + i64::from(v) * 2).min(total);
        let start = self.event_start(k);
        let experience = self.event_experience(k);
        let sessions: Vec<Value> = (0..if r.chance(0.15) { 2 } else { 1 })
            .map(|s| {
                let at = start + s * 86_400;
                json!({
                    "id": make_id(self.seed, Kind::Session, (k as u64) << 1 | s as u64),
                    "start_time": local(at),
                    "end_time": local(at + 7_200),
                    "timezone": "Europe/Copenhagen",
                    "location_id": make_id(self.seed, Kind::Location, experience as u64),
                    "languages": if r.chance(0.5) { json!(["en"]) } else { json!(["da", "en"]) },
                })
            })
            .collect();
        let state = if self.unknown(&mut r) {
            "POSTPONED"
        } else if start < self.now {
            "COMPLETED"
        } else {
            r.pick(&["ACTIVE", "ACTIVE", "ACTIVE", "INACTIVE", "CANCELLED"])
        };
        let e = json!({
            "id": make_id(self.seed, Kind::Event, k as u64),
            "state": state,
            "visibility": r.pick(&["PUBLIC", "PUBLIC", "PRIVATE"]),
            "experience_id": make_id(self.seed, Kind::Experience, experience as u64),
            "capacity": {"total": total, "reserved": reserved},
            "sessions": sessions,
            "created_at": ts(self.events.created[k]),
            "updated_at": ts(self.events.updated[k]),
        });
        let mut e = self.finish(e, &["metadata"], &[self.seed, 6, k as u64, u64::from(v)]);
        // With variants on, a few events are listed without their id from birth (as legacy
        // consents lack their e-mail), so no readable copy of them is ever stored.
        if self.broken(Kind::Event, k, 0) {
            world::remove(&mut e, "id");
        }
        e
    }
}
