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

mod tickets;

/// The simulated "now" when the world is generated: 2026-01-01T00:00:00Z.
pub const START: i64 = 1_767_225_600;
/// Generated history reaches back one year before `START`.
const HISTORY: i64 = 365 * 86_400;
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
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
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
fn ts(secs: i64) -> String {
    instant(secs).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn instant(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

fn local(secs: i64) -> String {
    instant(secs).naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The mutable facts of one kind of timestamped row.
#[derive(Default)]
struct Table {
    created: Vec<i64>,
    updated: Vec<i64>,
    version: Vec<u32>,
    /// Row indices ordered by (`updated`, index): what `sort=±updated_at` walks.
    by_updated: Vec<u32>,
}

impl Table {
    fn len(&self) -> usize {
        self.created.len()
    }
    fn push(&mut self, created: i64, updated: i64) {
        self.created.push(created);
        self.updated.push(updated);
        self.version.push(0);
    }
    fn touch(&mut self, i: usize, at: i64) {
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

/// The rows a list request selects, in walk order: the resource, its sort and its filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    Bookings,
    Orders,
    Consents,
    Events,
    Experiences,
}

/// Everything the sandbox serves.
pub struct World {
    seed: u64,
    data: DataConfig,
    mutate: MutateConfig,
    now: i64,
    steps: u64,
    company_id: String,
    initial_events: u64,
    initial_bookings: u64,
    bookings: Table,
    /// Orders follow bookings one to one: order `i` is paid for booking `i` (or a gift card).
    orders: Table,
    /// Refund creation times per order index; few orders have any.
    refunds: BTreeMap<u32, Vec<i64>>,
    consents_removed: Vec<bool>,
    consents_alive: Vec<u32>,
    events: Table,
    experiences: Table,
}

/// Lists as a correct sync must hold them, rendered as the API sends them.
#[derive(Debug, Default, PartialEq)]
pub struct Truth {
    pub bookings: BTreeMap<String, Value>,
    pub orders: BTreeMap<String, Value>,
    /// Keyed by (order id, position in the order's list).
    pub line_items: BTreeMap<(String, i64), Value>,
    /// Keyed by id; the value is (order id, item).
    pub transactions: BTreeMap<String, (String, Value)>,
    pub refunds: BTreeMap<String, (String, Value)>,
    /// Keyed as the job keys consents (see `consent_key`); removed consents are absent.
    pub consents: BTreeMap<String, Value>,
    pub events: BTreeMap<String, Value>,
    /// Rendered for `Accept-Language: en`.
    pub experiences: BTreeMap<String, Value>,
    /// Keyed by id; the value is (experience id, item), rendered for `en`.
    pub ticket_variants: BTreeMap<String, (String, Value)>,
    pub information_requests: BTreeMap<String, (String, Value)>,
    /// Keyed by id; the value is (booking id, item).
    pub booking_tickets: BTreeMap<String, (String, Value)>,
    /// Keyed by (booking id, position in the booking's list).
    pub information_request_answers: BTreeMap<(String, i64), Value>,
    /// Items the API lists that lack a field the job needs (variants only): they belong in
    /// quarantine, as (stream, the item's JSON text).
    pub broken: std::collections::BTreeSet<(String, String)>,
}

const FIRST: [&str; 10] = [
    "Anna", "Mads", "Sofie", "Lars", "Emma", "Jonas", "Ida", "Oliver", "Freja", "Noah",
];
const LAST: [&str; 8] = [
    "Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Larsen", "Berg", "Holm",
];
const CITIES: [&str; 5] = ["København", "Aarhus", "Odense", "Aalborg", "Skagen"];
const EXPERIENCES: [(&str, &str, &str); 6] = [
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
    pub fn new(seed: u64, data: DataConfig, mutate: MutateConfig) -> Self {
        let seed = if data.hostile_ids {
            seed | HOSTILE_IDS
        } else {
            seed & !HOSTILE_IDS
        };
        let mut w = Self {
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
        };
        w.generate();
        w
    }

    fn generate(&mut self) {
        let n = i64::from(self.data.bookings.max(1));
        for i in 0..self.data.bookings {
            let mut r = Rng::new(&[self.seed, Kind::Booking as u64, u64::from(i)]);
            let created = START - HISTORY + i64::from(i) * HISTORY / n;
            // Updated some time after creation, never after the world's "now"; with
            // `updated_pile_up`, capped instead, so recent rows share one `updated_at` (a tie
            // stress test for the incremental walk's overlap window).
            let later = |r: &mut Rng, span: i64| {
                if self.data.updated_pile_up {
                    (created + r.below(span as u64) as i64).min(START)
                } else {
                    created + r.below(span.min(START - created).max(1) as u64) as i64
                }
            };
            let updated = later(&mut r, 30 * 86_400);
            self.bookings.push(created, updated);
            let order_updated = later(&mut r, 20 * 86_400);
            self.orders.push(created, order_updated);
            // Some paid orders were refunded before the world began.
            if r.chance(0.03) && self.order_is_paid(i as usize) {
                self.refunds.insert(i, vec![order_updated]);
            }
        }
        let ne = i64::from(self.data.events.max(1));
        for k in 0..self.data.events {
            let mut r = Rng::new(&[self.seed, Kind::Event as u64, u64::from(k)]);
            let created = START - HISTORY + i64::from(k) * HISTORY / ne;
            self.events
                .push(created, (created + r.below(10 * 86_400) as i64).min(START));
        }
        for e in 0..self.data.experiences {
            let created = START - HISTORY - (i64::from(self.data.experiences) - i64::from(e)) * 7 * 86_400;
            self.experiences.push(created, created + 86_400);
        }
        self.consents_removed = vec![false; self.data.consents as usize];
        self.reindex();
    }

    fn reindex(&mut self) {
        self.bookings.reindex();
        self.orders.reindex();
        self.events.reindex();
        self.experiences.reindex();
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

    /// Advances the simulated clock by one step: new bookings with their orders, status changes
    /// on bookings and orders (`updated_at` moves), refunds appearing on paid orders, capacity
    /// changes on events, and consents removed and added.
    pub fn mutate(&mut self) {
        let cfg = self.mutate.clone();
        let step = cfg.step_secs.max(1);
        let t0 = self.now;
        let mut r = Rng::new(&[self.seed, 0x6d75_7461_7465, self.steps]);
        let share = |n: usize, s: f64| ((n as f64 * s).round() as usize).max(1);
        let old = self.bookings.len();

        let fresh = share(old, cfg.new_share);
        for k in 0..fresh {
            let created = t0 + 1 + (k as i64 * step) / fresh as i64;
            self.bookings.push(created, created);
            self.orders.push(created, created);
        }
        for _ in 0..share(old, cfg.update_share) {
            let i = r.below(old as u64) as usize;
            self.bookings.touch(i, t0 + 1 + r.below(step as u64) as i64);
            let j = r.below(old as u64) as usize;
            self.orders.touch(j, t0 + 1 + r.below(step as u64) as i64);
        }
        for _ in 0..share(old, cfg.refund_share) {
            let j = r.below(old as u64) as usize;
            let count = self.refunds.get(&(j as u32)).map_or(0, Vec::len);
            if self.order_is_paid(j) && count < 2 {
                let at = t0 + 1 + r.below(step as u64) as i64;
                self.refunds.entry(j as u32).or_default().push(at);
                self.orders.touch(j, at);
            }
        }
        let events = self.events.len();
        if events > 0 {
            for _ in 0..share(events, cfg.update_share) {
                let k = r.below(events as u64) as usize;
                self.events.touch(k, t0 + 1 + r.below(step as u64) as i64);
            }
        }
        // Now and then an experience changes its prices or questions (its `updated_at` moves).
        let experiences = self.experiences.len();
        if experiences > 0 && r.chance(0.5) {
            let e = r.below(experiences as u64) as usize;
            self.experiences.touch(e, t0 + 1 + r.below(step as u64) as i64);
        }
        let consents = self.consents_removed.len();
        let churn = share(self.consents_alive.len(), cfg.consent_churn_share);
        if !self.consents_alive.is_empty() {
            for _ in 0..churn {
                let pick = self.consents_alive[r.below(self.consents_alive.len() as u64) as usize];
                self.consents_removed[pick as usize] = true;
            }
        }
        self.consents_removed.extend(std::iter::repeat_n(false, churn));
        debug_assert!(self.consents_removed.len() == consents + churn);

        self.now = t0 + step;
        self.steps += 1;
        self.reindex();
    }

    // ---- selection -------------------------------------------------------------------

    /// The rows of a listing at `pos..pos+limit` in walk order, and whether more follow.
    /// `from`/`to` filter creation time (bookings, orders) or local start time (events).
    pub fn select(
        &self,
        listing: Listing,
        sort: Sort,
        from: Option<i64>,
        to: Option<i64>,
        pos: usize,
        limit: usize,
    ) -> (Vec<u32>, bool) {
        let table = match listing {
            Listing::Bookings => &self.bookings,
            Listing::Orders => &self.orders,
            Listing::Consents => return slice(&self.consents_alive, pos, limit),
            Listing::Events => {
                if from.is_none() && to.is_none() {
                    return range_slice(0..self.events.len(), false, pos, limit);
                }
                let hits: Vec<u32> = (0..self.events.len() as u32)
                    .filter(|&k| {
                        let start = self.event_start(k as usize);
                        from.is_none_or(|f| start >= f) && to.is_none_or(|t| start < t)
                    })
                    .collect();
                return slice(&hits, pos, limit);
            }
            Listing::Experiences => return range_slice(0..self.experiences.len(), false, pos, limit),
        };
        let range = table.created_range(from, to);
        match sort {
            Sort::CreatedAsc => range_slice(range, false, pos, limit),
            Sort::CreatedDesc => range_slice(range, true, pos, limit),
            Sort::UpdatedAsc | Sort::UpdatedDesc => {
                let desc = sort == Sort::UpdatedDesc;
                let full = range.start == 0 && range.end == table.len();
                let ordered: Box<dyn Iterator<Item = &u32>> = if desc {
                    Box::new(table.by_updated.iter().rev())
                } else {
                    Box::new(table.by_updated.iter())
                };
                let mut it: Box<dyn Iterator<Item = u32>> = if full {
                    Box::new(ordered.copied())
                } else {
                    Box::new(ordered.copied().filter(move |&i| range.contains(&(i as usize))))
                };
                let rows: Vec<u32> = it.by_ref().skip(pos).take(limit).collect();
                let more = it.next().is_some();
                (rows, more)
            }
        }
    }

    /// Index of a booking, order, event, experience or (listed, non-legacy) consent id, when it
    /// exists in this world.
    pub fn lookup(&self, kind: Kind, id: &str) -> Option<u32> {
        if kind == Kind::Consent {
            return self.consent_by_id(id).map(|c| c as u32);
        }
        let index = parse_id(self.seed, kind, id)?;
        let len = match kind {
            Kind::Booking => self.bookings.len(),
            Kind::Order => self.orders.len(),
            Kind::Event => self.events.len(),
            Kind::Experience => self.experiences.len(),
            _ => 0,
        };
        (index < len as u64).then_some(index as u32)
    }

    // ---- rendering -------------------------------------------------------------------
    //
    // Items are built as plain JSON from `understory-api.md` §2, never from the job's own types:
    // the sandbox must be able to send what the job cannot read, or shape bugs stay invisible.

    /// Sends some absent optional keys as `null` instead (§6.10); which ones depends on the row and
    /// its version only, so unchanged rows render the same. With variants on, the shapes the docs
    /// leave open are sent too (see `vary`).
    fn finish(&self, mut value: Value, optional: &[&str], salt: &[u64]) -> Value {
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
    /// ones depends on the row and its version, so a later change can mend it.
    fn broken(&self, kind: Kind, index: usize, version: u32) -> bool {
        self.data.variants
            && mix(self.seed ^ mix(((kind as u64) << 40) ^ ((index as u64) << 8) ^ u64::from(version)))
                .is_multiple_of(BROKEN_ONE_IN)
    }

    fn customer(&self, i: usize) -> Value {
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

    fn booking_event(&self, i: usize) -> usize {
        let mut r = Rng::new(&[self.seed, 0x6576_656e, i as u64]);
        r.below(self.initial_events) as usize
    }

    fn event_experience(&self, k: usize) -> usize {
        let mut r = Rng::new(&[self.seed, Kind::Event as u64, k as u64, 1]);
        r.below(u64::from(self.data.experiences.max(1))) as usize
    }

    fn unknown(&self, r: &mut Rng) -> bool {
        r.chance(self.data.unknown_enum_share)
    }

    /// A booking's status: drawn at creation, redrawn by every change (a check-in among them).
    fn booking_status(&self, i: usize) -> &'static str {
        let v = self.bookings.version[i];
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

    pub fn booking(&self, i: usize) -> Value {
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

    fn experience_price(&self, e: usize) -> i64 {
        25_000 + (mix(self.seed ^ e as u64) % 12) as i64 * 10_000
    }

    fn order_is_paid(&self, j: usize) -> bool {
        let mut r = Rng::new(&[self.seed, Kind::Order as u64, j as u64]);
        j % 10 == 9 || r.below(100) < 85
    }

    /// An order's lines as the model holds them, before rendering.
    fn lines(&self, j: usize) -> Vec<Line> {
        let mut r = Rng::new(&[self.seed, Kind::Order as u64, j as u64, 3]);
        if j % 10 == 9 {
            let gift = make_id(self.seed, Kind::GiftCard, j as u64);
            return vec![Line {
                quantity: 1,
                unit: 50_000 + r.below(10) as i64 * 10_000,
                vat: 0,
                product_type: "GIFTCARD",
                product_id: gift.clone(),
                details: json!({"type": "GIFT_CARD", "gift_card_id": gift}),
                discount: None,
            }];
        }
        let experience = self.event_experience(self.booking_event(j));
        let variants = self.variant_count(experience) as u64;
        (0..1 + r.below(3))
            .map(|n| {
                let addon = n > 0 && r.chance(0.5);
                // A ticket line charges one of the experience's variants, an add-on line one of
                // its add-ons, at the price of the day the order was placed.
                let pick = r.below(if addon { 2 } else { variants }) as usize;
                let unit = if addon {
                    self.experience_price(experience) / 5
                } else {
                    self.variant_list_price(experience, pick)
                };
                Line {
                    quantity: 1 + r.below(4) as i64,
                    unit,
                    vat: unit / 5,
                    product_type: if addon { "TICKET_ADDON" } else { "TICKET" },
                    product_id: self.variant_id(experience, pick, addon),
                    details: json!({
                        "type": "TICKET",
                        "experience_id": make_id(self.seed, Kind::Experience, experience as u64),
                        "ticket_id": make_id(self.seed, Kind::Ticket, (j as u64) << 3 | n),
                    }),
                    discount: r.chance(0.1).then_some(unit / 10),
                }
            })
            .collect()
    }

    /// (discount, VAT, amount) of an order, in øre.
    fn totals(&self, j: usize) -> (i64, i64, i64) {
        let lines = self.lines(j);
        let gross: i64 = lines.iter().map(|l| l.quantity * l.unit).sum();
        let vat: i64 = lines.iter().map(|l| l.quantity * l.vat).sum();
        let discount: i64 = lines
            .iter()
            .filter_map(|l| l.discount.map(|d| d * l.quantity))
            .sum();
        (discount, vat, gross - discount)
    }

    pub fn order(&self, j: usize) -> Value {
        let v = self.orders.version[j];
        let mut r = Rng::new(&[self.seed, Kind::Order as u64, j as u64, 9]);
        let mut rv = Rng::new(&[self.seed, Kind::Order as u64, j as u64, 1000 + u64::from(v)]);
        let refunds = self.refunds.get(&(j as u32)).map_or(0, Vec::len);
        let paid = self.order_is_paid(j);
        let (status, payment) = match (paid, refunds) {
            (true, 0) => ("COMPLETED", "PAID"),
            (true, 1) => ("COMPLETED", "PARTIALLY_REFUNDED"),
            (true, _) => ("CANCELLED", "REFUNDED"),
            (false, _) if v > 0 => ("CANCELLED", "UNPAID"),
            (false, _) => ("PENDING", "UNPAID"),
        };
        let payment = if self.unknown(&mut rv) {
            "AUTHORIZED"
        } else {
            payment
        };
        let gift = j % 10 == 9;
        let (discount, vat, amount) = self.totals(j);
        let mut origin = if gift {
            json!({"type": "GIFT_CARD", "id": make_id(self.seed, Kind::GiftCard, j as u64)})
        } else {
            json!({"type": "BOOKING", "id": make_id(self.seed, Kind::Booking, j as u64)})
        };
        if self.data.variants && j % 7 == 3 {
            remove(&mut origin, "type");
        }
        let mut o = json!({
            "id": make_id(self.seed, Kind::Order, j as u64),
            "number": format!("{}", 100_000 + j),
            "status": status,
            "created_at": ts(self.orders.created[j]),
            "updated_at": ts(self.orders.updated[j]),
            "customer": self.customer(j),
            "origin": origin,
            "totals": {"discount": money(discount), "vat_amount": money(vat), "amount": money(amount)},
        });
        if !r.chance(0.05) {
            o["payment_status"] = json!(payment);
        }
        if r.chance(0.15) {
            o["metadata"] = json!({"channel": "partner"});
        }
        if self.broken(Kind::Order, j, v) {
            remove(&mut o, "created_at");
        }
        self.finish(
            o,
            &["payment_status", "metadata"],
            &[self.seed, 2, j as u64, u64::from(v)],
        )
    }

    pub fn line_items(&self, j: usize) -> Vec<Value> {
        self.lines(j)
            .into_iter()
            .enumerate()
            .map(|(n, l)| {
                let mut item = json!({
                    "quantity": l.quantity,
                    "unit_price": money(l.unit),
                    "unit_vat_amount": money(l.vat),
                    "product_type": l.product_type,
                    "product_id": l.product_id,
                    "details": l.details,
                });
                if let Some(d) = l.discount {
                    // The docs say `discount`; MindCloud's capture shows `discounts[]` (§6.15).
                    if self.data.variants && (j + n).is_multiple_of(2) {
                        item["discounts"] =
                            json!([{"amount": money(d), "code": "WELCOME10", "type": "CODE"}]);
                    } else {
                        item["discount"] = json!({"amount": money(d), "code": "WELCOME10"});
                    }
                }
                self.finish(item, &["discount"], &[self.seed, 3, j as u64, n as u64])
            })
            .collect()
    }

    pub fn transactions(&self, j: usize) -> Vec<Value> {
        if !self.order_is_paid(j) {
            return Vec::new();
        }
        let gift = j % 10 == 9;
        let mut r = Rng::new(&[self.seed, Kind::Transaction as u64, j as u64]);
        let status = if self.data.variants && r.chance(0.2) {
            "SETTLED_LATER"
        } else {
            "COMPLETED"
        };
        let t = json!({
            "id": make_id(self.seed, Kind::Transaction, j as u64),
            "status": status,
            "provider": if gift { "STRIPE" } else { "ADYEN" },
            "amount": money(self.totals(j).2),
            "created_at": ts(self.orders.created[j] + 60),
            "details": {"type": "CARD"},
        });
        let mut t = self.finish(t, &["details"], &[self.seed, 4, j as u64]);
        // With variants on, now and then a transaction without its id: a child item the job
        // cannot key goes to quarantine under its parent, and the rest of the list is stored.
        if self.data.variants
            && mix(self.seed ^ mix((Kind::Transaction as u64) << 40 ^ j as u64))
                .is_multiple_of(BROKEN_ONE_IN / 3)
        {
            remove(&mut t, "id");
        }
        vec![t]
    }

    pub fn refunds(&self, j: usize) -> Vec<Value> {
        let Some(times) = self.refunds.get(&(j as u32)) else {
            return Vec::new();
        };
        let total = self.totals(j).2;
        times
            .iter()
            .enumerate()
            .map(|(k, &at)| {
                let refund = json!({
                    "id": make_id(self.seed, Kind::Refund, (j as u64) << 2 | k as u64),
                    "status": "COMPLETED",
                    "amount": money(total / 2),
                    "transaction_id": make_id(self.seed, Kind::Transaction, j as u64),
                    "created_at": ts(at),
                });
                self.finish(refund, &[], &[])
            })
            .collect()
    }

    /// Whether consent `c` is a legacy one (no `id`, no `references`).
    fn legacy(&self, c: usize) -> bool {
        Rng::new(&[self.seed, Kind::Consent as u64, c as u64]).chance(0.3)
    }

    /// A consent depends on nothing but itself: its reference points at a booking chosen among
    /// those the world started with, so other rows changing never changes it.
    pub fn consent(&self, c: usize) -> Value {
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
    fn consent_key(&self, c: usize) -> Option<String> {
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

    /// The first session's local start: a whole hour between 08:00 and 17:00, 1–60 days after
    /// the event was created.
    fn event_start(&self, k: usize) -> i64 {
        let mut r = Rng::new(&[self.seed, Kind::Event as u64, k as u64, 2]);
        let day = self.events.created[k] + (1 + r.below(60) as i64) * 86_400;
        day - day.rem_euclid(86_400) + (8 + r.below(10) as i64) * 3_600
    }

    pub fn event(&self, k: usize) -> Value {
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
        self.finish(e, &["metadata"], &[self.seed, 6, k as u64, u64::from(v)])
    }

    /// An experience with its name in `language` (one of `LANGUAGES`).
    pub fn experience(&self, e: usize, language: &str) -> Value {
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

    /// Consent `c` by id, if it has one and is still listed.
    pub fn consent_by_id(&self, id: &str) -> Option<usize> {
        let c = parse_id(self.seed, Kind::Consent, id)? as usize;
        (c < self.consents_removed.len() && !self.consents_removed[c] && !self.legacy(c)).then_some(c)
    }

    /// Everything a complete, correct sync of this world must hold.
    pub fn truth(&self) -> Truth {
        let mut t = Truth::default();
        let keep = |t: &mut Truth, stream: &'static str, readable: bool, item: &Value| {
            if !readable {
                t.broken.insert((stream.to_owned(), item.to_string()));
            }
            readable
        };
        for i in 0..self.bookings.len() {
            let b = self.booking(i);
            if keep(
                &mut t,
                "bookings",
                !self.broken(Kind::Booking, i, self.bookings.version[i]),
                &b,
            ) {
                let id = make_id(self.seed, Kind::Booking, i as u64);
                for ticket in self.tickets(i) {
                    let tid = ticket["id"].as_str().unwrap_or_default().to_owned();
                    t.booking_tickets.insert(tid, (id.clone(), ticket));
                }
                for (n, answer) in self.answers(i).into_iter().enumerate() {
                    t.information_request_answers
                        .insert((id.clone(), n as i64), answer);
                }
                t.bookings.insert(id, b);
            }
        }
        for j in 0..self.orders.len() {
            let o = self.order(j);
            if !keep(
                &mut t,
                "orders",
                !self.broken(Kind::Order, j, self.orders.version[j]),
                &o,
            ) {
                continue;
            }
            let id = make_id(self.seed, Kind::Order, j as u64);
            for (n, item) in self.line_items(j).into_iter().enumerate() {
                t.line_items.insert((id.clone(), n as i64), item);
            }
            for tx in self.transactions(j) {
                match tx["id"].as_str() {
                    Some(tid) => {
                        t.transactions.insert(tid.to_owned(), (id.clone(), tx));
                    }
                    None => {
                        t.broken.insert(("order_transactions".to_owned(), tx.to_string()));
                    }
                }
            }
            for refund in self.refunds(j) {
                let rid = refund["id"].as_str().unwrap_or_default().to_owned();
                t.refunds.insert(rid, (id.clone(), refund));
            }
            t.orders.insert(id, o);
        }
        for &c in &self.consents_alive {
            let v = self.consent(c as usize);
            match self.consent_key(c as usize) {
                Some(key) => {
                    t.consents.insert(key, v);
                }
                None => {
                    t.broken.insert(("marketing_consents".to_owned(), v.to_string()));
                }
            }
        }
        for k in 0..self.events.len() {
            t.events
                .insert(make_id(self.seed, Kind::Event, k as u64), self.event(k));
        }
        for e in 0..self.experiences.len() {
            let id = make_id(self.seed, Kind::Experience, e as u64);
            for v in self.ticket_variants(e, "en") {
                let vid = v["id"].as_str().unwrap_or_default().to_owned();
                t.ticket_variants.insert(vid, (id.clone(), v));
            }
            for q in self.information_requests(e) {
                let qid = q["id"].as_str().unwrap_or_default().to_owned();
                t.information_requests.insert(qid, (id.clone(), q));
            }
            t.experiences.insert(id, self.experience(e, "en"));
        }
        t
    }
}

/// With variants on, one item in this many lacks a field the job needs.
const BROKEN_ONE_IN: u64 = 61;

/// One order line as the model holds it.
struct Line {
    quantity: i64,
    unit: i64,
    vat: i64,
    product_type: &'static str,
    product_id: String,
    details: Value,
    /// Discount per unit, if any.
    discount: Option<i64>,
}

fn money(value: i64) -> Value {
    json!({"currency": CURRENCY, "value": value, "exponent": 2})
}

fn remove(v: &mut Value, key: &str) {
    if let Value::Object(m) = v {
        m.remove(key);
    }
}

/// Adds fields the job has never heard of to every object, at every level, as an API that grows
/// additively does (§4, versioning), and now and then a nested object of its own.
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

fn slice(rows: &[u32], pos: usize, limit: usize) -> (Vec<u32>, bool) {
    let start = pos.min(rows.len());
    let end = pos.saturating_add(limit).min(rows.len());
    (rows[start..end].to_vec(), end < rows.len())
}

fn range_slice(range: std::ops::Range<usize>, desc: bool, pos: usize, limit: usize) -> (Vec<u32>, bool) {
    let len = range.len();
    let start = pos.min(len);
    let end = pos.saturating_add(limit).min(len);
    let rows = (start..end)
        .map(|k| if desc { range.end - 1 - k } else { range.start + k } as u32)
        .collect();
    (rows, end < len)
}

/// Parses a `from`/`to` value on creation time: RFC 3339 with an offset.
pub fn parse_instant(raw: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(raw).ok().map(|t| t.timestamp())
}

/// Parses an events `from`/`to` value: a local date-time without offset (Gen C) or RFC 3339
/// (Gen B); both are compared with the session's local start time (§6.17).
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
        assert_ne!(small().truth().bookings, other.truth().bookings);
    }

    #[test]
    fn created_is_monotonic_and_walks_agree() {
        let w = small();
        let (asc, _) = w.select(Listing::Bookings, Sort::CreatedAsc, None, None, 0, 1000);
        let (desc, _) = w.select(Listing::Bookings, Sort::CreatedDesc, None, None, 0, 1000);
        assert_eq!(asc.len(), 300);
        assert_eq!(asc.iter().rev().copied().collect::<Vec<_>>(), desc);
        let (upd, more) = w.select(Listing::Bookings, Sort::UpdatedDesc, None, None, 0, 10);
        assert!(more);
        assert!(
            upd.windows(2)
                .all(|p| w.bookings.updated[p[0] as usize] >= w.bookings.updated[p[1] as usize])
        );
    }

    #[test]
    fn a_consent_depends_only_on_itself() {
        let mut w = small();
        let before = w.truth().consents;
        w.mutate();
        let after = w.truth().consents;
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
        assert!(after.bookings.len() > before.bookings.len());
        assert_ne!(before.consents, after.consents);
        let changed = before
            .bookings
            .iter()
            .filter(|(k, v)| after.bookings.get(*k) != Some(v))
            .count();
        assert!(changed > 0);
        let mut b = small();
        b.mutate();
        assert_eq!(after, b.truth());
    }
}
