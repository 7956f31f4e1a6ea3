//! Streams: one per Understory list the job copies, each described once, in its own file.
//!
//! A stream knows its endpoint and scope, how it is walked (incremental by `updated_at`, a full
//! scan, or per item of a parent stream), and how an item becomes a typed row. The row is a plain
//! `Serialize` struct whose fields are its table's columns; only `store` turns fields into SQL
//! parameters. The sync engine (`crate::sync`) does the walking; nothing here does I/O.
//!
//! Adding a stream: a file here with its `STREAM` and row, its `sql/statements/<name>.sql`, a
//! migration creating its table, its rows in `docs/schema.md`, and its name in the list below.

pub mod read;
mod redact;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::store::{Children, Prune, Quarantined, Record, Row};
use crate::time::Timestamp;
use read::Fields;

/// Declares the stream modules and lists them, in the order runs report them: the one place a
/// new stream is named.
macro_rules! streams {
    ($($stream:ident),* $(,)?) => {
        $(mod $stream;)*
        /// Every stream, parents before their children.
        pub static ALL: &[&Stream] = &[$(&$stream::STREAM),*];
    };
}

streams! {
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

/// A list the job copies.
#[derive(Debug)]
pub struct Stream {
    /// The stream's name: its `[streams]` config key, its table, its statements file, its
    /// `sync_state` row, its logs.
    pub name: &'static str,
    /// A list stream's endpoint relative to `api.base_url` (`{path}/{id}` fetches one item); a
    /// per-parent stream's last path segment (`{parent path}/{id}/{path}`).
    pub path: &'static str,
    /// The OAuth scope its endpoint requires (seed 003).
    pub scope: &'static str,
    pub mode: Mode,
    /// Whether it runs when `[streams]` does not name it.
    pub enabled_by_default: bool,
    /// Maps one item to its row.
    pub parse: fn(At<'_>, Fields<'_>) -> Result<Parsed, String>,
}

/// Streams are statics: one is another when they have the same name.
impl PartialEq for Stream {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Stream {}

/// How a stream is walked each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sortable by `updated_at`: a bootstrap crawl once, then only what changed.
    Incremental,
    /// No usable change filter: every run lists everything and confirms what vanished.
    Scan,
    /// A list per item of another stream, fetched by the fan-out for every parent that is new or
    /// changed; each parent's whole list replaces what is stored for it.
    PerParent(PerParent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerParent {
    pub parent: &'static Stream,
    /// Answers `{next, items}` with `cursor`/`limit` (else `{items}`, all at once, §6.13).
    pub paged: bool,
    /// How the stored list is replaced by the listed one.
    pub replace: Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Items have ids: stored ids the list no longer has are deleted.
    ById,
    /// Items have no id: they are keyed by position, and positions past the list's end deleted.
    ByPosition,
}

/// Where an item was listed: a per-parent stream's rows name their parent and position.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub parent_id: &'a str,
    pub position: usize,
}

impl At<'_> {
    /// A top-level list item.
    pub const TOP: At<'static> = At {
        parent_id: "",
        position: 0,
    };
}

/// What a stream's `parse` makes of an item.
#[derive(Debug)]
pub struct Parsed {
    pub record: Box<dyn Record>,
    /// The stored identity (`id`, a consent's natural key, a position): what removal detection
    /// and per-parent replacement compare.
    pub key: String,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

impl Parsed {
    pub fn new(record: impl Record + 'static, key: impl Into<String>) -> Self {
        Self {
            record: Box::new(record),
            key: key.into(),
            created_at: None,
            updated_at: None,
        }
    }

    /// The timestamps a walk sorts and resumes by.
    pub fn walked_by(mut self, created_at: Option<Timestamp>, updated_at: Option<Timestamp>) -> Self {
        self.created_at = created_at;
        self.updated_at = updated_at;
        self
    }
}

/// A parsed item, ready for the store.
#[derive(Debug)]
pub struct Item {
    pub row: Row,
    pub key: String,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

impl Stream {
    /// The stream this one is fetched per item of, if any.
    pub fn parent(&self) -> Option<&'static Stream> {
        match self.mode {
            Mode::PerParent(p) => Some(p.parent),
            _ => None,
        }
    }

    /// Reads one listed item; an error names the item's id when it has one.
    pub fn read(&self, at: At<'_>, raw: &RawValue) -> Result<Item, String> {
        if let Some((bytes, _)) = crate::mend::invalid_bytes(raw.get()) {
            return Err(format!(
                "item: not valid UTF-8 (bytes {bytes}); kept with them written as \\xNN"
            ));
        }
        // Typed columns are read from the redacted text too: no column holds a secret either.
        let kept = redact::redacted(raw.get());
        let text = kept.as_deref().unwrap_or(raw.get());
        let value = read::Node::parse(text).map_err(|e| format!("item: not JSON: {e}"))?;
        let fields = Fields::item(&value)?;
        let parsed = (self.parse)(at, fields).map_err(|e| match fields.str("id") {
            Some(id) => format!("item {id}: {e}"),
            None => format!("item: {e}"),
        })?;
        Ok(Item {
            row: Row {
                table: self.name,
                record: parsed.record,
                raw_json: kept.unwrap_or_else(|| raw.get().to_owned()),
                item_key: parsed.key.clone(),
            },
            key: parsed.key,
            created_at: parsed.created_at,
            updated_at: parsed.updated_at,
        })
    }

    /// Reads one parent's whole list into the rows replacing what is stored for it; an item that
    /// cannot be read goes to quarantine and the others are kept.
    pub fn read_list(&'static self, parent_id: &str, items: &[Box<RawValue>]) -> Children {
        let mut rows = Vec::with_capacity(items.len());
        let mut ids = Vec::new();
        let mut quarantined = Vec::new();
        for (position, raw) in items.iter().enumerate() {
            match self.read(At { parent_id, position }, raw) {
                Ok(item) => {
                    ids.push(item.key);
                    rows.push(item.row);
                }
                Err(error) => quarantined.push(Quarantined {
                    stream: self.name,
                    key: format!("{parent_id}#{position}"),
                    id: None,
                    parent_id: Some(parent_id.to_owned()),
                    error: format!("{} of {parent_id}, item {position}: {error}", self.name),
                    raw_json: as_kept(raw),
                }),
            }
        }
        let prune = match self.mode {
            Mode::PerParent(PerParent {
                replace: Replace::ById,
                ..
            }) => Prune::NotIn(ids),
            _ => Prune::BeyondPosition(items.len() as i64),
        };
        Children {
            table: self.name,
            parent_id: parent_id.to_owned(),
            rows,
            prune,
            quarantined,
        }
    }
}

/// The stream called `name`, if there is one.
pub fn by_name(name: &str) -> Option<&'static Stream> {
    ALL.iter().copied().find(|s| s.name == name)
}

/// Every table the streams write, each stream's before its children's.
pub fn tables() -> Vec<&'static str> {
    ALL.iter().map(|s| s.name).collect()
}

/// An item that could not be read, as it goes to quarantine.
pub fn quarantined(stream: &'static str, raw: &RawValue, error: String) -> Quarantined {
    let id = serde_json::from_str::<serde_json::Value>(raw.get())
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .filter(|id| !id.is_empty());
    Quarantined {
        stream,
        key: id.clone().unwrap_or_else(|| read::fingerprint(raw.get())),
        id,
        parent_id: None,
        error,
        raw_json: as_kept(raw),
    }
}

/// An item's JSON as quarantine keeps it: as sent, with bytes that were not UTF-8 written as
/// `\xNN` (see `crate::mend`).
/// Secret-named fields are redacted (see `redact`).
fn as_kept(raw: &RawValue) -> String {
    let text = crate::mend::invalid_bytes(raw.get()).map_or_else(|| raw.get().to_owned(), |(_, shown)| shown);
    redact::redacted(&text).unwrap_or(text)
}

// ---- column shapes shared by several streams ------------------------------------------------

/// A Money object's columns: `<field>_minor`, `<field>_currency`, `<field>_exponent`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Money {
    pub minor: Option<i64>,
    pub currency: Option<String>,
    pub exponent: Option<i64>,
}

impl From<read::Money<'_>> for Money {
    fn from(m: read::Money<'_>) -> Self {
        Self {
            minor: m.value,
            currency: m.currency.map(str::to_owned),
            exponent: m.exponent,
        }
    }
}

/// The customer union flattened into `customer_*` columns; the contact name is `full_name` or,
/// failing that, `name`. `address_lines` may be absent, null, or hold nulls: each line is read
/// on its own.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Customer {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    pub company_name: Option<String>,
    pub vat_number: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub zip_code: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
}

impl Customer {
    pub fn read(c: Fields<'_>) -> Self {
        let address = c.obj("address");
        let lines = address.array("address_lines");
        let line = |n: usize| lines.get(n).and_then(read::Node::as_str).map(str::to_owned);
        Self {
            kind: c.string("customer_type"),
            name: c.string("full_name").or_else(|| c.string("name")),
            company_name: c.string("company_name"),
            vat_number: c.string("vat_number"),
            email: c.string("email"),
            phone: c.string("phone"),
            address_line1: line(0),
            address_line2: line(1),
            city: address.string("city"),
            zip_code: address.string("zip_code"),
            region: address.string("region"),
            country: address.string("country"),
        }
    }
}
