//! `GET /v1/experiences` (and `/{id}`): `Accept-Language` required, names localized. Now and
//! then an experience changes its prices or questions (its `updated_at` moves).

use serde_json::{Value, json};

use super::{List, Range, Resource, Shape};
use crate::world::Step;
use crate::world::EXPERIENCES;
use crate::world::{self, Kind, Rng, World, make_id, ts};

pub static RESOURCE: Resource = Resource {
    stream: "experiences",
    scope: "experience.read",
    shape: Shape::List(List {
        path: "/v1/experiences",
        max_limit: 100,
        sortable: false,
        range: Range::None,
        localized: true,
        select: |w, s| world::range_slice(0..w.experiences.len(), false, s.pos, s.limit),
        render: World::experience,
        find: |w, id| w.experiences.find(w.seed(), Kind::Experience, id),
        key: |_, _, v| Some(world::id_of(v)),
    }),
    generate: Some(generate),
    mutate: Some(mutate),
};

/// Experiences made a week apart before the first booking.
fn generate(w: &mut World) {
    let n = i64::from(w.data.experiences);
    for e in 0..n {
        let created = world::START - world::HISTORY - (n - e) * 7 * 86_400;
        w.experiences.push(created, created + 86_400);
    }
}

fn mutate(w: &mut World, step: &mut Step) {
    let experiences = w.experiences.len();
    if experiences > 0 && step.r.chance(0.5) {
        let e = step.r.below(experiences as u64) as usize;
        let at = step.moment();
        w.experiences.touch(e, at);
    }
}

impl World {
    /// An experience with its name in `language` (one of `LANGUAGES`).
    pub(crate) fn experience(&self, e: usize, language: &str) -> Value {
        let (en, da, de) = EXPERIENCES[e % EXPERIENCES.len()];
        let base = match language {
            "da" => da,
            "de" => de,
            _ => en,
        };
        let mut r = Rng::new(&[self.seed, Kind::Experience as u64, e as u64]);
        let mut x = json!({
            "id": make_id(self.seed, Kind::Experience, e as u64),
            "type": r.pick(&["SINGLE_SESSION", "SINGLE_SESSION", "MULTI_SESSION"]),
            "state": r.pick(&["ACTIVE", "ACTIVE", "ACTIVE", "ARCHIVED"]),
            "name": format!("{base} #{}", e + 1),
            "created_at": ts(self.experiences.created[e]),
            "updated_at": ts(self.experiences.updated[e]),
        });
        if r.chance(0.7) {
            x["description"] = json!(format!("**{base}** with a local guide."));
        }
        if r.chance(0.5) {
            x["tag_ids"] = json!([format!("tag-{}", e % 3)]);
        }
        if r.chance(0.5) {
            x["media"] = json!([{
                "type": "IMAGE",
                "url": format!("https://cdn.example.org/experiences/{e}.jpg"),
                "mime_type": "image/jpeg",
            }]);
        }
        self.finish(
            x,
            &["description", "tag_ids", "media", "metadata"],
            &[self.seed, 7, e as u64],
        )
    }
}
