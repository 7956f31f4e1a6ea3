//! The resources the sandbox serves, one file each: where it is listed, the scope it needs, how
//! its items are selected and rendered, how it changes as simulated time passes, and how a
//! correct copy keys it (its truth). The routes and the truth are built from [`ALL`]; nothing
//! else in the sandbox names a resource.
//!
//! Adding a resource: a file here with its `RESOURCE`, and its name in the list below. Its
//! `stream` is the job's stream name, which keys the truth tests compare with.
//!
//! The paths and scopes here are written from `docs/understory-api.md`, not taken from the job:
//! the sandbox states the API independently, so a wrong path in the job fails a test instead of
//! being mirrored. [`served`] shows them, read-only, to the one test that holds the two in
//! agreement (the job's `tests/it/agreement.rs`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::config::{DataConfig, MutateConfig};
use super::world::{Rng, Selection, Step, World};

/// Declares the resource modules and lists them: the one place a new resource is named.
macro_rules! resources {
    ($($resource:ident),* $(,)?) => {
        $(mod $resource;)*
        /// Every resource, parents before their children; mutation runs in this order.
        pub(crate) static ALL: &[&Resource] = &[$(&$resource::RESOURCE),*];
    };
}

resources! {
    bookings,
    booking_tickets,
    information_request_answers,
    orders,
    order_line_items,
    order_transactions,
    order_refunds,
    marketing_consents,
    events,
    experiences,
    ticket_variants,
    information_requests,
    webhook_subscriptions,
}

/// One simulated resource.
pub(crate) struct Resource {
    /// The job's stream that copies it; the key of its rows in [`Truth`].
    pub stream: &'static str,
    /// The OAuth scope a token needs to read it.
    pub scope: &'static str,
    pub shape: Shape,
    /// How it is born with the world; `None` when it follows its parent.
    pub generate: Option<fn(&mut World)>,
    /// What one step of simulated time does to it; `None` when it changes only with its parent.
    pub mutate: Option<fn(&mut World, &mut Step)>,
}

pub(crate) enum Shape {
    /// A top-level list at `path`, each item also at `path/{id}`.
    List(List),
    /// A list per item of another resource, at `{parent path}/{id}/{path}`.
    PerParent(PerParent),
}

pub(crate) struct List {
    pub path: &'static str,
    /// The largest `limit` the list accepts.
    pub max_limit: usize,
    /// Whether `sort` (`±created_at`, `±updated_at`) is accepted.
    pub sortable: bool,
    /// What `from`/`to` filter, if they are accepted.
    pub range: Range,
    /// Whether the request must carry `Accept-Language` (items are rendered in it).
    pub localized: bool,
    /// The rows at `pos..pos+limit` in walk order, and whether more follow.
    pub select: fn(&World, &Selection) -> (Vec<u32>, bool),
    /// Item `index` as the API sends it, in a language of `LANGUAGES`.
    pub render: fn(&World, usize, &str) -> Value,
    /// The index of an id, when `GET {path}/{id}` finds it.
    pub find: fn(&World, &str) -> Option<usize>,
    /// The item's key as a correct copy stores it, or `None` when the job cannot read it (it
    /// belongs in quarantine).
    pub key: fn(&World, usize, &Value) -> Option<String>,
}

pub(crate) struct PerParent {
    pub parent: &'static Resource,
    /// The last segment of its path.
    pub path: &'static str,
    /// Answers `{next, items}` with `cursor`/`limit`; otherwise `{items}`, all at once.
    pub paged: bool,
    /// Whether the request must carry `Accept-Language`.
    pub localized: bool,
    pub keyed: Keyed,
    /// Parent `index`'s items, in a language of `LANGUAGES`.
    pub render: fn(&World, usize, &str) -> Vec<Value>,
}

/// How a per-parent item is keyed under its parent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyed {
    /// By its `id`; an item without one belongs in quarantine.
    ById,
    /// By its position in its parent's list.
    ByPosition,
}

/// What `from`/`to` filter on a list.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Range {
    /// Not accepted.
    None,
    /// Creation time, RFC 3339 instants.
    Created,
    /// The first session's local start, local date-times (events, `docs/understory-api.md` §6.17).
    LocalStart,
}

/// A world's life is its resources': each is born, changes and is kept by a correct copy as its
/// descriptor says, in the order of [`ALL`]. Here, beside the list, so that the world's data
/// (`world`) knows nothing of the resources built on it.
impl World {
    /// The world of `seed`: its first year, each resource born as its `generate` says.
    pub fn new(seed: u64, data: DataConfig, mutate: MutateConfig) -> Self {
        let mut w = Self::unborn(seed, data, mutate);
        for res in ALL {
            if let Some(generate) = res.generate {
                generate(&mut w);
            }
        }
        w.reindex();
        w
    }

    /// Advances the simulated clock by one step: each resource changes as its `mutate` says
    /// ([`ALL`], in that order), then the walk orders are rebuilt.
    pub fn mutate(&mut self) {
        let t0 = self.now;
        let mut step = Step {
            r: Rng::new(&[self.seed, 0x6d75_7461_7465, self.steps]),
            t0,
            cfg: self.mutate.clone(),
        };
        for res in ALL {
            if let Some(mutate) = res.mutate {
                mutate(self, &mut step);
            }
        }
        self.now = t0 + step.secs();
        self.steps += 1;
        self.reindex();
    }

    /// Everything a complete, correct sync of this world must hold.
    pub fn truth(&self) -> Truth {
        Truth::of(self)
    }
}

impl Resource {
    pub fn list(&self) -> Option<&List> {
        match &self.shape {
            Shape::List(l) => Some(l),
            Shape::PerParent(_) => None,
        }
    }

    /// Its path under the server's root: a list's own, or a per-parent list's with `{id}`.
    pub fn route(&self) -> String {
        match &self.shape {
            Shape::List(l) => l.path.to_owned(),
            Shape::PerParent(p) => format!("{}/{{id}}/{}", p.parent.route(), p.path),
        }
    }
}

/// A stream's rows as a correct copy holds them: keyed by (parent id, key), where a top-level
/// list's parent is empty and a key is an id, a consent's key or a position.
pub type Rows = BTreeMap<(String, String), Value>;

/// Lists as a correct sync must hold them, rendered as the API sends them (experiences and
/// their lists in `en`).
#[derive(Debug, Default, PartialEq)]
pub struct Truth {
    /// Per stream name.
    pub streams: BTreeMap<&'static str, Rows>,
    /// Items the API lists that the job cannot read: they belong in quarantine, as (stream, the
    /// item's JSON text).
    pub broken: BTreeSet<(String, String)>,
}

impl Truth {
    /// The rows of stream `name` (none if it has no resource).
    pub fn rows(&self, name: &str) -> &Rows {
        static NONE: Rows = BTreeMap::new();
        self.streams.get(name).unwrap_or(&NONE)
    }

    /// Everything a complete, correct sync of `w` must hold.
    pub fn of(w: &World) -> Self {
        let mut t = Self::default();
        for res in ALL {
            let mut rows = Rows::new();
            // A keyed item is a row under its parent; one without a key belongs in quarantine.
            let mut keep = |parent: &str, key: Option<String>, item: Value| match key {
                Some(key) => {
                    rows.insert((parent.to_owned(), key), item);
                }
                None => {
                    t.broken.insert((res.stream.to_owned(), item.to_string()));
                }
            };
            match &res.shape {
                Shape::List(l) => {
                    for i in listed(l, w) {
                        let v = (l.render)(w, i, "en");
                        keep("", (l.key)(w, i, &v), v);
                    }
                }
                Shape::PerParent(p) => {
                    let parent = p.parent.list().expect("a parent is a top-level list");
                    for i in listed(parent, w) {
                        let pv = (parent.render)(w, i, "en");
                        if (parent.key)(w, i, &pv).is_none() {
                            continue;
                        }
                        let pid = pv["id"].as_str().unwrap_or_default();
                        for (n, item) in (p.render)(w, i, "en").into_iter().enumerate() {
                            let key = match p.keyed {
                                Keyed::ById => item["id"].as_str().map(str::to_owned),
                                Keyed::ByPosition => Some(n.to_string()),
                            };
                            keep(pid, key, item);
                        }
                    }
                }
            }
            t.streams.insert(res.stream, rows);
        }
        t
    }
}

/// What the sandbox serves for one stream, as the job's tests compare it with the job's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// The job's stream that copies it.
    pub stream: &'static str,
    /// The OAuth scope a token needs to read it.
    pub scope: &'static str,
    /// A list's path from the root (`/v1/bookings`); a per-parent list's last segment, after
    /// its parent's item (`line-items` in `/v1/orders/{id}/line-items`).
    pub path: &'static str,
    /// The stream of the parent a per-parent list hangs under; `None` for a top-level list.
    pub parent: Option<&'static str>,
}

/// Every resource as [`Served`], parents before their children, in the order of [`ALL`].
pub fn served() -> Vec<Served> {
    ALL.iter()
        .map(|r| {
            let (path, parent) = match &r.shape {
                Shape::List(l) => (l.path, None),
                Shape::PerParent(p) => (p.path, Some(p.parent.stream)),
            };
            Served {
                stream: r.stream,
                scope: r.scope,
                path,
                parent,
            }
        })
        .collect()
}

/// Every row a list holds now.
fn listed(l: &List, w: &World) -> impl Iterator<Item = usize> {
    (l.select)(w, &Selection::ALL).0.into_iter().map(|i| i as usize)
}
