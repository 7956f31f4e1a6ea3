//! `GET /v1/experiences/{id}/information-requests`: paged; `Accept-Language` required though the
//! questions are not localized. `required` moves with the experience's version.

use serde_json::{Value, json};

use super::{Keyed, PerParent, Resource, Shape};
use crate::world::catalogue::QUESTIONS;
use crate::world::{Kind, World, make_id};

pub static RESOURCE: Resource = Resource {
    stream: "information_requests",
    scope: "experience.read",
    shape: Shape::PerParent(PerParent {
        parent: &super::experiences::RESOURCE,
        path: "information-requests",
        paged: true,
        localized: true,
        keyed: Keyed::ById,
        render: |w, e, _| w.information_requests(e),
    }),
    generate: None,
    mutate: None,
};

impl World {
    /// Experience `e`'s information requests. With variants on, some still carry the question
    /// as `label`, its name before the 2025-12-19 rename.
    pub(crate) fn information_requests(&self, e: usize) -> Vec<Value> {
        let version = u64::from(self.experiences.version[e]);
        (0..self.question_count(e))
            .map(|q| {
                let (question, _) = QUESTIONS[q];
                let mut x = json!({
                    "id": make_id(self.seed, Kind::InformationRequest, (e as u64) << 2 | q as u64),
                    "type": "TEXT",
                    "required": (q as u64 + version).is_multiple_of(2),
                    "scope": if q == 0 { "TICKET" } else { "BOOKING" },
                });
                let key = if self.data.variants && (e + q).is_multiple_of(3) {
                    "label"
                } else {
                    "question"
                };
                x[key] = json!(question);
                self.finish(x, &[], &[self.seed, 11, e as u64, q as u64, version])
            })
            .collect()
    }
}
