//! Which bookings, events and experiences a step of the world created, changed or removed, as
//! the webhook events Understory sends for them (`docs/understory-api.md` §2, *Webhook
//! deliveries*): a snapshot of the rows' versions before the step, compared with the world
//! after it, under the same write lock.
//!
//! What the world models, and so what is sent: bookings are created and changed (a change that
//! makes a booking `CANCELLED` is `v1.booking.cancelled`, any other `updated`); events change
//! and, when the clock passes their first session's start, become `COMPLETED`
//! (`v1.event.completed`); experiences change. Rows that appear or are deleted in a table are
//! `created` or `deleted` where the type exists, so a world that grows them needs nothing here.
//! An event's `CANCELLED` state is drawn once and never reached by a change, so
//! `v1.event.cancelled` is never sent.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::world::{Kind, Table, World, make_id};

/// One webhook event to send: its type, the id of the row it is about, and its thin payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub event_type: &'static str,
    pub item_id: String,
    pub payload: Value,
}

/// A table's rows as a step found them.
struct Rows {
    version: Vec<u32>,
    gone: BTreeSet<u32>,
}

impl Rows {
    fn of(t: &Table) -> Self {
        Self {
            version: t.version.clone(),
            gone: t.gone.clone(),
        }
    }

    /// Rows born since: indices past the old end, not deleted.
    fn created<'a>(&'a self, t: &'a Table) -> impl Iterator<Item = usize> + 'a {
        (self.version.len()..t.len()).filter(|i| !t.gone.contains(&(*i as u32)))
    }

    /// Rows deleted since.
    fn deleted<'a>(&'a self, t: &'a Table) -> impl Iterator<Item = usize> + 'a {
        t.gone.difference(&self.gone).map(|&i| i as usize)
    }

    /// Rows that were there before and changed since, with their version before.
    fn changed<'a>(&'a self, t: &'a Table) -> impl Iterator<Item = (usize, u32)> + 'a {
        self.version
            .iter()
            .enumerate()
            .filter(|&(i, &v)| t.version[i] != v && !t.gone.contains(&(i as u32)))
            .map(|(i, &v)| (i, v))
    }
}

/// The world before a step, as far as webhooks care.
pub(crate) struct Before {
    now: i64,
    bookings: Rows,
    events: Rows,
    experiences: Rows,
}

impl Before {
    pub(crate) fn of(w: &World) -> Self {
        Self {
            now: w.now(),
            bookings: Rows::of(&w.bookings),
            events: Rows::of(&w.events),
            experiences: Rows::of(&w.experiences),
        }
    }

    /// The events the step from `self` to `w` calls for, bookings first, then events, then
    /// experiences.
    pub(crate) fn changes(&self, w: &World) -> Vec<Change> {
        let mut out = Vec::new();
        let b = &self.bookings;
        out.extend(
            b.created(&w.bookings)
                .map(|i| booking(w, i, "v1.booking.created")),
        );
        out.extend(
            b.changed(&w.bookings)
                .map(|(i, v)| booking(w, i, booking_change(w, i, v))),
        );
        let e = &self.events;
        out.extend(e.created(&w.events).map(|k| event(w, k, "v1.event.created")));
        let changed: BTreeSet<usize> = e.changed(&w.events).map(|(k, _)| k).collect();
        for k in w
            .events
            .live()
            .map(|k| k as usize)
            .filter(|&k| k < e.version.len())
        {
            if self.completed(w, k) {
                out.push(event(w, k, "v1.event.completed"));
            } else if changed.contains(&k) {
                out.push(event(w, k, "v1.event.updated"));
            }
        }
        out.extend(e.deleted(&w.events).map(|k| event(w, k, "v1.event.deleted")));
        let x = &self.experiences;
        out.extend(
            x.created(&w.experiences)
                .map(|e| experience(w, e, "v1.experience.created")),
        );
        out.extend(
            x.changed(&w.experiences)
                .map(|(e, _)| experience(w, e, "v1.experience.updated")),
        );
        out.extend(
            x.deleted(&w.experiences)
                .map(|e| experience(w, e, "v1.experience.deleted")),
        );
        out
    }

    /// Whether event `k` became `COMPLETED` in the step: its start was still ahead of the clock
    /// before, and it renders as completed now (an unknown state drawn for it wins over that).
    fn completed(&self, w: &World, k: usize) -> bool {
        let start = w.event_start(k);
        start >= self.now && start < w.now() && w.event(k)["state"] == "COMPLETED"
    }
}

/// The event for one row changed on demand (`World::touch`), from its version before.
pub(crate) fn touched(w: &World, kind: Kind, i: usize, before: u32) -> Option<Change> {
    match kind {
        Kind::Booking => Some(booking(w, i, booking_change(w, i, before))),
        Kind::Event => Some(event(w, i, "v1.event.updated")),
        Kind::Experience => Some(experience(w, i, "v1.experience.updated")),
        _ => None,
    }
}

/// `cancelled` when the change made booking `i` cancelled, `updated` otherwise.
fn booking_change(w: &World, i: usize, before: u32) -> &'static str {
    let now = w.booking_status(i);
    if now == "CANCELLED" && w.booking_status_at(i, before) != "CANCELLED" {
        "v1.booking.cancelled"
    } else {
        "v1.booking.updated"
    }
}

/// A booking's event: its id, the company's (`host_id`), its experience's and its event's, as
/// the API's GET endpoints spell them.
fn booking(w: &World, i: usize, event_type: &'static str) -> Change {
    let seed = w.seed();
    let ev = w.booking_event(i);
    let id = make_id(seed, Kind::Booking, i as u64);
    Change {
        event_type,
        payload: json!({
            "booking_id": id,
            "host_id": w.company_id(),
            "experience_id": make_id(seed, Kind::Experience, w.event_experience(ev) as u64),
            "event_id": make_id(seed, Kind::Event, ev as u64),
        }),
        item_id: id,
    }
}

fn event(w: &World, k: usize, event_type: &'static str) -> Change {
    let seed = w.seed();
    let id = make_id(seed, Kind::Event, k as u64);
    Change {
        event_type,
        payload: json!({
            "event_id": id,
            "experience_id": make_id(seed, Kind::Experience, w.event_experience(k) as u64),
        }),
        item_id: id,
    }
}

fn experience(w: &World, e: usize, event_type: &'static str) -> Change {
    let id = make_id(w.seed(), Kind::Experience, e as u64);
    Change {
        event_type,
        payload: json!({ "experience_id": id }),
        item_id: id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DataConfig, MutateConfig};

    fn world() -> World {
        let data = DataConfig {
            bookings: 300,
            consents: 50,
            events: 40,
            experiences: 6,
            ..DataConfig::default()
        };
        // A day a step, so a few dozen steps pass many events' starts without the bookings'
        // compound growth getting large.
        let mutate = MutateConfig {
            step_secs: 86_400,
            ..MutateConfig::default()
        };
        World::new(7, data, mutate)
    }

    /// Every new booking is `created`, every booking whose version moved is `updated` or
    /// `cancelled`, and nothing unchanged is sent.
    #[test]
    fn a_step_gives_one_event_per_changed_booking() {
        let mut w = world();
        let before = Before::of(&w);
        let old = w.bookings.len();
        w.mutate();
        let changes = before.changes(&w);
        let bookings: Vec<&Change> = changes
            .iter()
            .filter(|c| c.event_type.starts_with("v1.booking."))
            .collect();
        let created = bookings
            .iter()
            .filter(|c| c.event_type == "v1.booking.created")
            .count();
        assert_eq!(created, w.bookings.len() - old);
        let moved = (0..old)
            .filter(|&i| w.bookings.version[i] != before.bookings.version[i])
            .count();
        assert_eq!(bookings.len() - created, moved);
        for c in &bookings {
            let i = crate::world::parse_id(w.seed(), Kind::Booking, &c.item_id).unwrap() as usize;
            let status = w.booking(i)["status"].clone();
            if c.event_type == "v1.booking.cancelled" {
                assert_eq!(status, "CANCELLED");
            }
            assert_eq!(c.payload["host_id"], w.company_id());
            assert_eq!(c.payload["event_id"], w.booking(i)["event_id"]);
            assert_eq!(c.payload["experience_id"], w.booking(i)["experience_id"]);
        }
        assert!(changes.iter().any(|c| c.event_type == "v1.event.updated"));
    }

    /// Events whose start the clock passes are sent as completed, each once.
    #[test]
    fn the_clock_passing_an_event_completes_it() {
        let mut w = world();
        let mut completed = BTreeSet::new();
        for _ in 0..60 {
            let before = Before::of(&w);
            w.mutate();
            for c in before.changes(&w) {
                if c.event_type == "v1.event.completed" {
                    assert!(
                        completed.insert(c.item_id.clone()),
                        "{} completed twice",
                        c.item_id
                    );
                }
            }
        }
        assert!(!completed.is_empty());
    }
}
