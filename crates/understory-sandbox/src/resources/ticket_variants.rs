//! `GET /v1/experiences/{id}/ticket-variants`: paged, localized. A variant's price moves with its
//! experience's version (see `world::catalogue`).

use serde_json::{Value, json};

use super::{Keyed, PerParent, Resource, Shape};
use crate::world::catalogue::{ADD_ONS, VARIANTS, localized};
use crate::world::{World, money};

pub static RESOURCE: Resource = Resource {
    stream: "ticket_variants",
    scope: "experience.read",
    shape: Shape::PerParent(PerParent {
        parent: &super::experiences::RESOURCE,
        path: "ticket-variants",
        paged: true,
        localized: true,
        keyed: Keyed::ById,
        render: World::ticket_variants,
    }),
    generate: None,
    mutate: None,
};

impl World {
    /// Experience `e`'s ticket variants, as the API lists them, named in `language`.
    pub(crate) fn ticket_variants(&self, e: usize, language: &str) -> Vec<Value> {
        let version = i64::from(self.experiences.version[e]);
        // Prices move with the experience's version; orders already placed keep theirs.
        let now_price = |list: i64| list + version * 500;
        let add_ons: Vec<Value> = ADD_ONS
            .iter()
            .enumerate()
            .map(|(a, names)| {
                let price = now_price(self.experience_price(e) / 5);
                json!({
                    "id": self.variant_id(e, a, true),
                    "name": localized(*names, language),
                    "description": format!("Add {}", localized(*names, "en").to_lowercase()),
                    "price": money(price),
                    "vat_amount": money(price / 5),
                })
            })
            .collect();
        (0..self.variant_count(e))
            .map(|v| {
                let price = now_price(self.variant_list_price(e, v));
                let mut x = json!({
                    "id": self.variant_id(e, v, false),
                    "name": localized(VARIANTS[v], language),
                    "price": money(price),
                    "vat_amount": money(price / 5),
                    "add_on_variants": add_ons,
                });
                if v == 0 {
                    x["description"] = json!("Ages 16 and up");
                }
                self.finish(
                    x,
                    &["description"],
                    &[self.seed, 10, e as u64, v as u64, version as u64],
                )
            })
            .collect()
    }
}
