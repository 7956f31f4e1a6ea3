//! Webhook subscriptions created through the API (`POST /v1/webhook-subscriptions`), and the
//! one-row changes a benchmark asks for (`touch`).
//!
//! Created subscriptions are kept apart from the generated ones: their fields are what the
//! client sent, not drawn from the seed, and keeping them in their own table leaves the
//! generated world's draws (and so its data) the same whether or not a client subscribed.
//! Their row indices start at [`CREATED_BASE`], so one index space (and one id space) holds
//! both and a list shows the created ones after the generated ones.

use base64::Engine as _;
use serde_json::Value;

use super::{Kind, Rng, Table, World};

/// The row index of the first created subscription: far above any generated one, and still a
/// `u32`, as list selections are.
pub(crate) const CREATED_BASE: u32 = 1 << 31;

/// What a client sets on a subscription (the body of a create or a full replace).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub url: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub description: Option<String>,
    pub metadata: Option<Value>,
}

/// The created subscriptions: their timestamps and versions, their fields and their secrets.
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) table: Table,
    pub(crate) specs: Vec<Spec>,
    pub(crate) secrets: Vec<String>,
}

/// Where the sender delivers to: a created, enabled subscription.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub id: String,
    pub url: String,
    pub secret: String,
    pub event_types: Vec<String>,
    /// Its place among the created subscriptions, for draws that must not depend on its id.
    pub k: usize,
}

impl Hooks {
    /// The created subscription at list row `i`, if that row is one.
    pub(crate) fn slot(i: usize) -> Option<usize> {
        i.checked_sub(CREATED_BASE as usize)
    }
}

impl World {
    /// Stores a new subscription at the simulated now; returns its list row.
    pub(crate) fn create_hook(&mut self, spec: Spec) -> usize {
        let k = self.hooks.specs.len();
        let secret = self.hook_secret(k);
        self.hooks.table.push(self.now, self.now);
        self.hooks.specs.push(spec);
        self.hooks.secrets.push(secret);
        CREATED_BASE as usize + k
    }

    /// Replaces every field of created subscription `k`; its `updated_at` moves to now.
    pub(crate) fn replace_hook(&mut self, k: usize, spec: Spec) {
        self.hooks.specs[k] = spec;
        self.hooks.table.touch(k, self.now);
    }

    /// Deletes created subscription `k`: it leaves the list and its id answers 404.
    pub(crate) fn delete_hook(&mut self, k: usize) {
        self.hooks.table.gone.insert(k as u32);
    }

    /// The created subscriptions not deleted, as list rows.
    pub(crate) fn live_hooks(&self) -> impl Iterator<Item = u32> + '_ {
        self.hooks.table.live().map(|k| CREATED_BASE + k)
    }

    /// Every created subscription that is enabled and not deleted: where events go now.
    pub(crate) fn hook_targets(&self) -> Vec<Target> {
        self.hooks
            .table
            .live()
            .map(|k| k as usize)
            .filter(|&k| self.hooks.specs[k].enabled)
            .map(|k| Target {
                id: super::make_id(
                    self.seed,
                    Kind::WebhookSubscription,
                    (CREATED_BASE as usize + k) as u64,
                ),
                url: self.hooks.specs[k].url.clone(),
                secret: self.hooks.secrets[k].clone(),
                event_types: self.hooks.specs[k].event_types.clone(),
                k,
            })
            .collect()
    }

    /// `whsec_` and the base64 of 24 bytes, as Standard Webhooks secrets are. Drawn from the
    /// seed and the subscription's place, so a run can be replayed; the sandbox's secrets guard
    /// nothing (its client secrets are published in its config).
    fn hook_secret(&self, k: usize) -> String {
        let mut r = Rng::new(&[self.seed, 0x7768_7365_6372_6574, k as u64]);
        let bytes: Vec<u8> = (0..3).flat_map(|_| r.next_u64().to_le_bytes()).collect();
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    /// Changes one row of `kind` (bookings, events or experiences) now, as a step's update
    /// would, at the simulated now; returns its index and its version before. The row is drawn
    /// from the seed and the number of touches so far.
    pub(crate) fn touch(&mut self, kind: Kind) -> Option<(usize, u32)> {
        let mut r = Rng::new(&[self.seed, 0x0074_6f75_6368, self.touches]);
        self.touches += 1;
        let now = self.now;
        let table = match kind {
            Kind::Booking => &mut self.bookings,
            Kind::Event => &mut self.events,
            Kind::Experience => &mut self.experiences,
            _ => return None,
        };
        let live: Vec<u32> = table.live().collect();
        let i = *live.get(r.below(live.len() as u64) as usize)? as usize;
        let before = table.version[i];
        table.touch(i, now);
        table.reindex();
        Some((i, before))
    }
}
