//! `GET /v1/bookings` (and `/v1/bookings/{id}`): sortable by creation or update time, filtered
//! by creation time. New bookings arrive with their orders; changes move a booking's status
//! (a check-in among them) and its `updated_at`.

use serde_json::{Value, json};

use super::{List, Range, Resource, Shape};
use crate::world::Step;
use crate::world::START;
use crate::world::{self, Kind, Rng, World, make_id, remove, ts};

pub static RESOURCE: Resource = Resource {
    stream: "bookings",
    scope: "booking.read",
    shape: Shape::List(List {
        path: "/v1/bookings",
        max_limit: 100,
        sortable: true,
        range: Range::Created,
        localized: false,
        select: |w, s| w.bookings.select(s),
        render: |w, i, _| w.booking(i),
        find: |w, id| w.bookings.find(w.seed(), Kind::Booking, id),
        key: |w, i, v| (!w.broken(Kind::Booking, i, w.bookings.version[i])).then(|| world::id_of(v)),
    }),
    generate: Some(generate),
    mutate: Some(mutate),
};

/// A year of bookings, evenly spread, each updated some time after it was made.
fn generate(w: &mut World) {
    let n = i64::from(w.data.bookings.max(1));
    for i in 0..w.data.bookings {
        let mut r = Rng::new(&[w.seed, Kind::Booking as u64, u64::from(i)]);
        let created = world::START - world::HISTORY + i64::from(i) * world::HISTORY / n;
        let updated = w.first_update(&mut r, created, 30 * 86_400);
        w.bookings.push(created, updated);
    }
}

/// New bookings through the step, and changes to a share of the others.
fn mutate(w: &mut World, step: &mut Step) {
    let old = w.bookings.len();
    let fresh = step.share(old, step.cfg.new_share);
    for k in 0..fresh {
        let created = step.t0 + 1 + (k as i64 * step.secs()) / fresh as i64;
        w.bookings.push(created, created);
    }
    for _ in 0..step.share(old, step.cfg.update_share) {
        let i = step.r.below(old as u64) as usize;
        let at = step.moment();
        w.bookings.touch(i, at);
    }
}

impl World {
    /// A booking's status: drawn at creation, redrawn by every change (a check-in among them).
    pub(crate) fn booking_status(&self, i: usize) -> &'static str {
        self.booking_status_at(i, self.bookings.version[i])
    }

    /// The status booking `i` has at version `v`: what it was before a change, for the webhook
    /// that tells a cancellation from an update.
    pub(crate) fn booking_status_at(&self, i: usize, v: u32) -> &'static str {
        let mut r = Rng::new(&[self.seed, Kind::Booking as u64, i as u64, 8]);
        let mut rv = Rng::new(&[self.seed, Kind::Booking as u64, i as u64, 2000 + u64::from(v)]);
        if self.unknown(&mut rv) {
            "WAITLISTED"
        } else if v == 0 && self.event_start(self.booking_event(i)) < START {
            // The event took place before the world began: most guests turned up.
            match r.below(20) {
                0 => "CANCELLED",
                1 | 2 => "ACTIVE",
                _ => "CHECKED_IN",
            }
        } else if v == 0 {
            [
                "ACTIVE",
                "ACTIVE",
                "ACTIVE",
                "ACTIVE",
                "ACTIVE",
                "ACTIVE",
                "CHECKED_IN",
                "CHECKED_IN",
                "CANCELLED",
                "PROCESSING",
            ]
            .get(r.below(10) as usize)
            .copied()
            .unwrap_or("ACTIVE")
        } else {
            rv.pick(&["CANCELLED", "MOVED", "CHECKED_IN", "ACTIVE"])
        }
    }

    pub(crate) fn booking(&self, i: usize) -> Value {
        let v = self.bookings.version[i];
        let mut r = Rng::new(&[self.seed, Kind::Booking as u64, i as u64, 7]);
        let mut rv = Rng::new(&[self.seed, Kind::Booking as u64, i as u64, 1000 + u64::from(v)]);
        let status = self.booking_status(i);
        let event = self.booking_event(i);
        let mut b = json!({
            "id": make_id(self.seed, Kind::Booking, i as u64),
            "status": status,
            "created_at": ts(self.bookings.created[i]),
            "updated_at": ts(self.bookings.updated[i]),
            "company_id": self.company_id,
            "experience_id": make_id(self.seed, Kind::Experience, self.event_experience(event) as u64),
            "event_id": make_id(self.seed, Kind::Event, event as u64),
            "customer": self.customer(i),
            "locale": r.pick(&["da", "en", "en-US", "de"]),
        });
        if r.chance(0.7) {
            b["source"] = json!(r.pick(&["WEBSITE", "BACKOFFICE", "MARKETPLACE"]));
        }
        if rv.chance(0.1) {
            b["internal_note"] = json!(format!("note v{v}: allergic to shellfish"));
        }
        if r.chance(0.2) {
            b["metadata"] = json!({"campaign": "spring-2026"});
        }
        if self.broken(Kind::Booking, i, v) {
            remove(&mut b, "updated_at");
        }
        self.finish(
            b,
            &["source", "internal_note", "metadata"],
            &[self.seed, 1, i as u64, u64::from(v)],
        )
    }
}
