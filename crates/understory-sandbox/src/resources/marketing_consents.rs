//! `GET /v1/marketing-consents` (and `/{id}`, Gen C): no sort and no filter; legacy consents
//! have no id. Each step some consents are withdrawn (they leave the list) and new ones given.

use serde_json::{Value, json};

use super::{List, Range, Resource, Shape};
use crate::world::Step;
use crate::world::{FIRST, LAST, parse_id};
use crate::world::{self, Kind, Rng, World, make_id, remove};

pub static RESOURCE: Resource = Resource {
    stream: "marketing_consents",
    scope: "marketing.read",
    shape: Shape::List(List {
        path: "/v1/marketing-consents",
        max_limit: 100,
        sortable: false,
        range: Range::None,
        localized: false,
        select: |w, s| world::slice(&w.consents_alive, s.pos, s.limit),
        render: |w, c, _| w.consent(c),
        find: World::consent_by_id,
        key: |w, c, _| w.consent_key(c),
    }),
    generate: Some(generate),
    mutate: Some(mutate),
};

/// The consents given before the world began, none withdrawn.
fn generate(w: &mut World) {
    w.consents_removed = vec![false; w.data.consents as usize];
}

/// Withdraws a share of the listed consents and adds as many new ones.
fn mutate(w: &mut World, step: &mut Step) {
    let churn = step.share(w.consents_alive.len(), step.cfg.consent_churn_share);
    if !w.consents_alive.is_empty() {
        for _ in 0..churn {
            let pick = w.consents_alive[step.r.below(w.consents_alive.len() as u64) as usize];
            w.consents_removed[pick as usize] = true;
        }
    }
    w.consents_removed.extend(std::iter::repeat_n(false, churn));
}

impl World {
    /// Whether consent `c` is a legacy one (no `id`, no `references`).
    pub(crate) fn legacy(&self, c: usize) -> bool {
        Rng::new(&[self.seed, Kind::Consent as u64, c as u64]).chance(0.3)
    }

    /// A consent depends on nothing but itself: its reference points at a booking chosen among
    /// those the world started with, so other rows changing never changes it.
    pub(crate) fn consent(&self, c: usize) -> Value {
        let mut r = Rng::new(&[self.seed, Kind::Consent as u64, c as u64]);
        let legacy = r.chance(0.3);
        let mut v = json!({
            "company_id": self.company_id,
            "full_name": format!("{} {}", r.pick(&FIRST), r.pick(&LAST)),
            "email": format!("subscriber{c}@example.net"),
            "source": r.pick(&["checkout", "newsletter", "import", "backoffice"]),
        });
        if !legacy {
            v["id"] = json!(make_id(self.seed, Kind::Consent, c as u64));
            if r.chance(0.8) {
                let booking = make_id(self.seed, Kind::Booking, r.below(self.initial_bookings));
                v["references"] = if self.data.variants && c.is_multiple_of(5) {
                    // A reference whose `type` the API left out.
                    json!([{"id": booking}])
                } else {
                    json!([{"type": "BOOKING", "id": booking}])
                };
            }
        } else if self.broken(Kind::Consent, c, 0) {
            // A legacy consent without its e-mail cannot be told apart from others.
            remove(&mut v, "email");
        }
        self.finish(v, &["references"], &[self.seed, 5, c as u64])
    }

    /// The consent's key as the job stores it (`docs/schema.md`, `marketing_consents`): `id:`
    /// and its id, or `legacy:` and company, e-mail and source joined by U+001F.
    pub(crate) fn consent_key(&self, c: usize) -> Option<String> {
        let v = self.consent(c);
        if let Some(id) = v["id"].as_str() {
            return Some(format!("id:{id}"));
        }
        Some(format!(
            "legacy:{}\u{1f}{}\u{1f}{}",
            v["company_id"].as_str()?,
            v["email"].as_str()?,
            v["source"].as_str()?
        ))
    }

    /// Consent `c` by id, if it has one and is still listed.
    pub(crate) fn consent_by_id(&self, id: &str) -> Option<usize> {
        let c = parse_id(self.seed, Kind::Consent, id)? as usize;
        (c < self.consents_removed.len() && !self.consents_removed[c] && !self.legacy(c)).then_some(c)
    }
}
