//! The sandbox's data: a deterministic world generated from a seed.
//!
//! Rows are not stored. Each one is rendered on demand from `(seed, kind, index, version)`, and
//! only what changes over time is kept: a row's creation time, its last update time and version
//! (24 bytes a row), the refunds that appeared on orders, and which consents were removed. That
//! is what keeps a million bookings well under 200 MiB.
//!
//! Mutation advances a simulated clock (not the wall clock: cursors and tokens expire in real
//! time, the data ages in simulated time) and creates, updates and removes rows; `truth` renders
//! everything a correct sync must hold afterwards.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::config::{DataConfig, MutateConfig};

pub(crate) mod catalogue;
pub(crate) mod hooks;

/// A list request's selection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Selection {
    pub sort: Sort,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub pos: usize,
    pub limit: usize,
}

impl Selection {
    /// Every row, in creation order.
    pub const ALL: Self = Self {
        sort: Sort::CreatedAsc,
        from: None,
        to: None,
        pos: 0,
        limit: usize::MAX,
    };
}

/// One step of simulated time, as the resources' `mutate` see it.
pub(crate) struct Step {
    pub r: Rng,
    /// The clock when the step began.
    pub t0: i64,
    pub cfg: MutateConfig,
}

impl Step {
    /// `share` of `n`, at least one.
    pub fn share(&self, n: usize, share: f64) -> usize {
        ((n as f64 * share).round() as usize).max(1)
    }

    /// A moment within the step.
    pub fn moment(&mut self) -> i64 {
        self.t0 + 1 + self.r.below(self.secs() as u64) as i64
    }

    pub fn secs(&self) -> i64 {
        self.cfg.step_secs.max(1)
    }
}

/// The simulated "now" when the world is generated: 2026-01-01T00:00:00Z.
pub const START: i64 = 1_767_225_600;
/// Generated history reaches back one year before `START`.
pub(crate) const HISTORY: i64 = 365 * 86_400;
const CURRENCY: &str = "DKK";

/// splitmix64's finaliser: a cheap, well-mixed hash of one word.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hash of a string, for fingerprints.
pub(crate) fn hash_str(s: &str) -> u64 {
    s.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| mix(h ^ u64::from(b)))
}

/// A small deterministic generator; every draw depends only on the parts it was made from.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(parts: &[u64]) -> Self {
        Self(
            parts
                .iter()
                .fold(0x243f_6a88_85a3_08d3, |acc, p| mix(acc ^ mix(*p))),
        )
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    /// A uniform float in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// What a generated id names; part of the id so that ids of different kinds never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Booking = 1,
    Order = 2,
    Consent = 3,
    Event = 4,
    Experience = 5,
    Company = 6,
    Transaction = 7,
    Refund = 8,
    Session = 9,
    Location = 10,
    GiftCard = 11,
    User = 12,
    Ticket = 13,
    TicketVariant = 14,
    InformationRequest = 15,
    BookingTicket = 16,
    WebhookSubscription = 17,
}

/// A seed with this bit set makes hostile ids (`DataConfig::hostile_ids`).
const HOSTILE_IDS: u64 = 1 << 63;
/// What every hostile id starts with: a path separator, a query, a fragment, an escape, a dot
/// segment and a space.
pub const HOSTILE_ID_PREFIX: &str = "../a b?c=1#d%2F/";

/// A UUID-shaped id whose last group carries the kind and index, so lookups need no map; the
/// rest is a hash of the seed, so a guessed id for another seed is rejected.
pub fn make_id(seed: u64, kind: Kind, index: u64) -> String {
    let h = mix(seed ^ mix(((kind as u64) << 48) ^ index));
    let prefix = if seed & HOSTILE_IDS != 0 {
        HOSTILE_ID_PREFIX
    } else {
        ""
    };
    format!(
        "{prefix}{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        (h >> 4) & 0xfff,
        h & 0xfff,
        ((kind as u64) << 40) | (index & 0xff_ffff_ffff)
    )
}

/// The index of an id made by `make_id` for this seed and kind, if it is one.
pub fn parse_id(seed: u64, kind: Kind, id: &str) -> Option<u64> {
    let tail = id.get(id.len().checked_sub(12)?..)?;
    let packed = u64::from_str_radix(tail, 16).ok()?;
    let index = packed & 0xff_ffff_ffff;
    (make_id(seed, kind, index) == id).then_some(index)
}

/// An RFC 3339 timestamp in UTC, as the API writes them (`2019-08-24T14:15:22Z`).
pub(crate) fn ts(secs: i64) -> String {
    instant(secs).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn instant(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

pub(crate) fn local(secs: i64) -> String {
    instant(secs).naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The mutable facts of one kind of timestamped row.
#[derive(Default)]
pub(crate) struct Table {
    pub(crate) created: Vec<i64>,
    pub(crate) updated: Vec<i64>,
    pub(crate) version: Vec<u32>,
    /// Row indices ordered by (`updated`, index): what `sort=±updated_at` walks.
    by_updated: Vec<u32>,
    /// Rows deleted: `find` no longer finds them and `live` skips them (`select` walks every
    /// row: bookings and orders are never deleted).
    pub(crate) gone: std::collections::BTreeSet<u32>,
}

impl Table {
    pub(crate) fn len(&self) -> usize {
        self.created.len()
    }
    pub(crate) fn push(&mut self, created: i64, updated: i64) {
        self.created.push(created);
        self.updated.push(updated);
        self.version.push(0);
    }
    pub(crate) fn touch(&mut self, i: usize, at: i64) {
        self.updated[i] = self.updated[i].max(at);
        self.version[i] += 1;
    }
    fn reindex(&mut self) {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_unstable_by_key(|&i| (self.updated[i as usize], i));
        self.by_updated = order;
    }
    /// Indices whose creation time is in `[from, to)`; `created` is non-decreasing by index.
    fn created_range(&self, from: Option<i64>, to: Option<i64>) -> std::ops::Range<usize> {
        let lo = from.map_or(0, |f| self.created.partition_point(|&c| c < f));
        let hi = to.map_or(self.len(), |t| self.created.partition_point(|&c| c < t));
        lo..hi.max(lo)
    }

    /// The rows a list request selects: filtered by creation time, walked in `sort` order.
    pub(crate) fn select(&self, s: &Selection) -> (Vec<u32>, bool) {
        let range = self.created_range(s.from, s.to);
        match s.sort {
            Sort::CreatedAsc => range_slice(range, false, s.pos, s.limit),
            Sort::CreatedDesc => range_slice(range, true, s.pos, s.limit),
            Sort::UpdatedAsc | Sort::UpdatedDesc => {
                let desc = s.sort == Sort::UpdatedDesc;
                let full = range.start == 0 && range.end == self.len();
                let ordered: Box<dyn Iterator<Item = &u32>> = if desc {
                    Box::new(self.by_updated.iter().rev())
                } else {
                    Box::new(self.by_updated.iter())
                };
                let mut it: Box<dyn Iterator<Item = u32>> = if full {
                    Box::new(ordered.copied())
                } else {
                    Box::new(ordered.copied().filter(move |&i| range.contains(&(i as usize))))
                };
                let rows: Vec<u32> = it.by_ref().skip(s.pos).take(s.limit).collect();
                let more = it.next().is_some();
                (rows, more)
            }
        }
    }

    /// The index of `id`, made for `seed` and `kind`, if this table holds it.
    pub(crate) fn find(&self, seed: u64, kind: Kind, id: &str) -> Option<usize> {
        let index = parse_id(seed, kind, id)?;
        (index < self.len() as u64 && !self.gone.contains(&(index as u32))).then_some(index as usize)
    }

    /// The rows not deleted, in creation order.
    pub(crate) fn live(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len() as u32).filter(|i| !self.gone.contains(i))
    }
}

/// The order a list is walked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    CreatedAsc,
    CreatedDesc,
    UpdatedAsc,
    UpdatedDesc,
}

impl Sort {
    /// Parses the `sort` query value; `None` names what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "+created_at" => Ok(Self::CreatedAsc),
            "-created_at" => Ok(Self::CreatedDesc),
            "+updated_at" => Ok(Self::UpdatedAsc),
            "-updated_at" => Ok(Self::UpdatedDesc),
            s if s.starts_with(' ') => Err(format!(
                "invalid sort '{s}': a leading '+' must be URL-escaped as %2B"
            )),
            s => Err(format!(
                "invalid sort '{s}': use one of +created_at, -created_at, +updated_at, -updated_at"
            )),
        }
    }
}

/// Everything the sandbox serves.
pub struct World {
    pub(crate) seed: u64,
    pub(crate) data: DataConfig,
    pub(crate) mutate: MutateConfig,
    pub(crate) now: i64,
    pub(crate) steps: u64,
    pub(crate) company_id: String,
    pub(crate) initial_events: u64,
    pub(crate) initial_bookings: u64,
    pub(crate) bookings: Table,
    /// Orders follow bookings one to one: order `i` is paid for booking `i` (or a gift card).
    pub(crate) orders: Table,
    /// Refund creation times per order index; few orders have any.
    pub(crate) refunds: BTreeMap<u32, Vec<i64>>,
    pub(crate) consents_removed: Vec<bool>,
    pub(crate) consents_alive: Vec<u32>,
    pub(crate) events: Table,
    pub(crate) experiences: Table,
    /// Rows of resources that keep their own, by stream name.
    pub(crate) own: BTreeMap<&'static str, Table>,
    /// Webhook subscriptions created through the API.
    pub(crate) hooks: hooks::Hooks,
    /// Rows changed on demand so far (`touch`), which picks the next one.
    pub(crate) touches: u64,
}

pub(crate) const FIRST: [&str; 10] = [
    "Anna", "Mads", "Sofie", "Lars", "Emma", "Jonas", "Ida", "Oliver", "Freja", "Noah",
];
pub(crate) const LAST: [&str; 8] = [
    "Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Larsen", "Berg", "Holm",
];
const CITIES: [&str; 5] = ["København", "Aarhus", "Odense", "Aalborg", "Skagen"];
pub(crate) const EXPERIENCES: [(&str, &str, &str); 6] = [
    ("Kayak tour", "Kajaktur", "Kajaktour"),
    ("Wine tasting", "Vinsmagning", "Weinprobe"),
    ("Guided city walk", "Byvandring", "Stadtführung"),
    ("Sourdough workshop", "Surdejsværksted", "Sauerteig-Workshop"),
    ("Seal safari", "Sælsafari", "Robbensafari"),
    (
        "Sunset sailing",
        "Solnedgangssejlads",
        "Segeln bei Sonnenuntergang",
    ),
];
/// Languages the sandbox's storefront offers; `Accept-Language` must match one.
pub const LANGUAGES: [&str; 3] = ["en", "da", "de"];

impl World {
    /// A world with nothing born yet: `World::new` (with the resources) generates its first
    /// year.
    pub(crate) fn unborn(seed: u64, data: DataConfig, mutate: MutateConfig) -> Self {
        let seed = if data.hostile_ids {
            seed | HOSTILE_IDS
        } else {
            seed & !HOSTILE_IDS
        };
        Self {
            seed,
            company_id: make_id(seed, Kind::Company, 0),
            initial_events: u64::from(data.events.max(1)),
            initial_bookings: u64::from(data.bookings.max(1)),
            data,
            mutate,
            now: START,
            steps: 0,
            bookings: Table::default(),
            orders: Table::default(),
            refunds: BTreeMap::new(),
            consents_removed: Vec::new(),
            consents_alive: Vec::new(),
            events: Table::default(),
            experiences: Table::default(),
            own: BTreeMap::new(),
            hooks: hooks::Hooks::default(),
            touches: 0,
        }
    }

    /// When a row created at `created` was last updated at the world's start: some time after
    /// creation (up to `span`), never after the start; with `updated_pile_up`, capped instead, so
    /// recent rows share one `updated_at` (a tie stress test for the incremental walk's overlap
    /// window).
    pub(crate) fn first_update(&self, r: &mut Rng, created: i64, span: i64) -> i64 {
        if self.data.updated_pile_up {
            (created + r.below(span as u64) as i64).min(START)
        } else {
            created + r.below(span.min(START - created).max(1) as u64) as i64
        }
    }

    /// Rebuilds the walk orders after rows were born or changed.
    pub(crate) fn reindex(&mut self) {
        self.bookings.reindex();
        self.orders.reindex();
        self.events.reindex();
        self.experiences.reindex();
        for table in self.own.values_mut() {
            table.reindex();
        }
        self.hooks.table.reindex();
        self.consents_alive = (0..self.consents_removed.len() as u32)
            .filter(|&c| !self.consents_removed[c as usize])
            .collect();
    }

    /// The simulated clock, Unix seconds.
    pub fn now(&self) -> i64 {
        self.now
    }

    pub fn company_id(&self) -> &str {
        &self.company_id
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn booking_count(&self) -> usize {
        self.bookings.len()
    }

    pub fn consent_count(&self) -> usize {
        self.consents_alive.len()
    }

    // ---- rendering -------------------------------------------------------------------
    //
    // Items are built as plain JSON from `docs/understory-api.md` §2, never from the job's types:
    // the sandbox must be able to send what the job cannot read, or shape bugs stay invisible.

    /// Sends some absent optional keys as `null` instead (`docs/understory-api.md` §6.10); which ones depends on the row and
    /// its version only, so unchanged rows render the same. With variants on, the shapes the docs
    /// leave open are sent too (see `vary`).
    pub(crate) fn finish(&self, mut value: Value, optional: &[&str], salt: &[u64]) -> Value {
        if let Value::Object(map) = &mut value {
            let mut r = Rng::new(salt);
            for key in optional {
                if !map.contains_key(*key) && r.chance(self.data.null_share) {
                    map.insert((*key).to_owned(), Value::Null);
                }
            }
        }
        if self.data.variants {
            vary(
                &mut value,
                &mut Rng::new(&[salt.iter().fold(0, |a, b| mix(a ^ b)), 0x7661_7279]),
                0,
            );
        }
        value
    }

    /// With variants on, about one item in [`BROKEN_ONE_IN`] lacks a field the job needs; which
    /// ones depends on the row and the `version` passed, so a later change can mend it (callers
    /// that pass 0, for items that lack their id or key from birth, are never mended).
    pub(crate) fn broken(&self, kind: Kind, index: usize, version: u32) -> bool {
        self.data.variants
            && mix(self.seed ^ mix(((kind as u64) << 40) ^ ((index as u64) << 8) ^ u64::from(version)))
                .is_multiple_of(BROKEN_ONE_IN)
    }

    pub(crate) fn customer(&self, i: usize) -> Value {
        let mut r = Rng::new(&[self.seed, 0x6375_7374, i as u64]);
        let first = r.pick(&FIRST);
        let last = r.pick(&LAST);
        let lines = if r.chance(0.3) {
            json!([
                format!("Strandvejen {}", 1 + r.below(200)),
                format!("{}. tv", 1 + r.below(5))
            ])
        } else {
            json!([format!("Havnegade {}", 1 + r.below(90))])
        };
        let mut address = json!({
            "address_lines": lines,
            "city": r.pick(&CITIES),
            "zip_code": format!("{}", 1000 + r.below(8990)),
            "country": "DK",
        });
        if r.chance(0.4) {
            address["region"] = json!("Hovedstaden");
        }
        let email = format!("guest{i}@example.org");
        let phone = r.chance(0.9).then(|| format!("+45 2{:07}", r.below(10_000_000)));
        let mut c = if r.chance(0.8) {
            json!({
                "customer_type": "PRIVATE",
                "full_name": format!("{first} {last}"),
                "email": email,
                "address": address,
            })
        } else {
            json!({
                "customer_type": "COMPANY",
                "company_name": format!("{last} & Co ApS"),
                "vat_number": format!("DK{:08}", r.below(100_000_000)),
                "name": format!("{first} {last}"),
                "email": email,
                "address": address,
            })
        };
        if let Some(phone) = phone {
            c["phone"] = json!(phone);
        }
        if self.data.variants {
            // Nulls inside nested objects, as an API that marks nothing nullable may still send.
            match r.below(4) {
                0 => c["phone"] = Value::Null,
                1 => c["address"]["address_lines"] = Value::Null,
                2 => c["address"]["region"] = Value::Null,
                _ => {}
            }
        }
        c
    }

    pub(crate) fn booking_event(&self, i: usize) -> usize {
        let mut r = Rng::new(&[self.seed, 0x6576_656e, i as u64]);
        r.below(self.initial_events) as usize
    }

    pub(crate) fn event_experience(&self, k: usize) -> usize {
        let mut r = Rng::new(&[self.seed, Kind::Event as u64, k as u64, 1]);
        r.below(u64::from(self.data.experiences.max(1))) as usize
    }

    pub(crate) fn unknown(&self, r: &mut Rng) -> bool {
        r.chance(self.data.unknown_enum_share)
    }

    pub(crate) fn experience_price(&self, e: usize) -> i64 {
        25_000 + (mix(self.seed ^ e as u64) % 12) as i64 * 10_000
    }
}

/// With variants on, one item in this many lacks a field the job needs.
pub(crate) const BROKEN_ONE_IN: u64 = 61;

pub(crate) fn money(value: i64) -> Value {
    json!({"currency": CURRENCY, "value": value, "exponent": 2})
}

pub(crate) fn remove(v: &mut Value, key: &str) {
    if let Value::Object(m) = v {
        m.remove(key);
    }
}

/// Adds fields the job has never heard of to every object, at every level, as an API that grows
/// additively does (`docs/understory-api.md` §4, versioning), and now and then a nested object of its own.
fn vary(v: &mut Value, r: &mut Rng, depth: usize) {
    match v {
        Value::Object(m) => {
            for child in m.values_mut() {
                vary(child, r, depth + 1);
            }
            m.insert("x_added_later".to_owned(), json!(r.below(1000)));
            if depth == 0 && r.chance(0.3) {
                m.insert(
                    "x_extension".to_owned(),
                    json!({"kind": "beta", "nested": {"flag": true, "list": [1, null]}}),
                );
            }
        }
        Value::Array(items) => {
            for child in items {
                vary(child, r, depth + 1);
            }
        }
        _ => {}
    }
}

pub(crate) fn slice(rows: &[u32], pos: usize, limit: usize) -> (Vec<u32>, bool) {
    let start = pos.min(rows.len());
    let end = pos.saturating_add(limit).min(rows.len());
    (rows[start..end].to_vec(), end < rows.len())
}

pub(crate) fn range_slice(
    range: std::ops::Range<usize>,
    desc: bool,
    pos: usize,
    limit: usize,
) -> (Vec<u32>, bool) {
    let len = range.len();
    let start = pos.min(len);
    let end = pos.saturating_add(limit).min(len);
    let rows = (start..end)
        .map(|k| if desc { range.end - 1 - k } else { range.start + k } as u32)
        .collect();
    (rows, end < len)
}

/// An item's `id` as rendered (empty if it has none).
pub(crate) fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}

/// An item's key where only its `id` is required: none when it has no (non-empty) id, and so
/// belongs in quarantine.
pub(crate) fn id_key(v: &Value) -> Option<String> {
    v["id"].as_str().filter(|id| !id.is_empty()).map(str::to_owned)
}

/// Parses a `from`/`to` value on creation time: RFC 3339 with an offset.
pub fn parse_instant(raw: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(raw).ok().map(|t| t.timestamp())
}

/// Parses an events `from`/`to` value: a local date-time without offset (Gen C) or RFC 3339
/// (Gen B); both are compared with the session's local start time (`docs/understory-api.md` §6.17).
pub fn parse_local(raw: &str) -> Option<i64> {
    if let Some(t) = parse_instant(raw) {
        return Some(t);
    }
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> World {
        seeded(7)
    }

    fn seeded(seed: u64) -> World {
        let data = DataConfig {
            bookings: 300,
            consents: 100,
            events: 20,
            ..DataConfig::default()
        };
        World::new(seed, data, MutateConfig::default())
    }

    #[test]
    fn ids_round_trip_and_reject_other_seeds() {
        let id = make_id(7, Kind::Booking, 12_345);
        assert_eq!(parse_id(7, Kind::Booking, &id), Some(12_345));
        assert_eq!(parse_id(8, Kind::Booking, &id), None);
        assert_eq!(parse_id(7, Kind::Order, &id), None);
        assert_eq!(parse_id(7, Kind::Booking, "nonsense"), None);
    }

    #[test]
    fn same_seed_same_world() {
        assert_eq!(small().truth(), small().truth());
        let other = seeded(8);
        assert_ne!(small().truth().rows("bookings"), other.truth().rows("bookings"));
    }

    #[test]
    fn created_is_monotonic_and_walks_agree() {
        let w = small();
        let walk = |sort, limit| {
            w.bookings.select(&Selection {
                sort,
                limit,
                ..Selection::ALL
            })
        };
        let (asc, _) = walk(Sort::CreatedAsc, 1000);
        let (desc, _) = walk(Sort::CreatedDesc, 1000);
        assert_eq!(asc.len(), 300);
        assert_eq!(asc.iter().rev().copied().collect::<Vec<_>>(), desc);
        let (upd, more) = walk(Sort::UpdatedDesc, 10);
        assert!(more);
        assert!(
            upd.windows(2)
                .all(|p| w.bookings.updated[p[0] as usize] >= w.bookings.updated[p[1] as usize])
        );
    }

    #[test]
    fn a_consent_depends_only_on_itself() {
        let mut w = small();
        let before = w.truth().rows("marketing_consents").clone();
        w.mutate();
        let after = w.truth().rows("marketing_consents").clone();
        let changed = before
            .iter()
            .filter(|(k, v)| after.get(*k).is_some_and(|a| a != *v))
            .count();
        assert_eq!(changed, 0, "new bookings change no consent");
        assert!(
            before.keys().any(|k| !after.contains_key(k)),
            "churn removes some"
        );
    }

    #[test]
    fn mutation_changes_the_truth_and_is_deterministic() {
        let mut a = small();
        let before = a.truth();
        a.mutate();
        let after = a.truth();
        assert!(after.rows("bookings").len() > before.rows("bookings").len());
        assert_ne!(
            before.rows("marketing_consents"),
            after.rows("marketing_consents")
        );
        let changed = before
            .rows("bookings")
            .iter()
            .filter(|(k, v)| after.rows("bookings").get(*k) != Some(v))
            .count();
        assert!(changed > 0);
        let mut b = small();
        b.mutate();
        assert_eq!(after, b.truth());
    }
}
