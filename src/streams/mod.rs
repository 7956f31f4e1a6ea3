//! Streams: one per Understory list the job copies. A stream knows its endpoint and scope, how
//! it is walked (incremental by `updated_at`, or a full scan), and how an item becomes a row.
//! The sync engine (`crate::sync`) does the walking; nothing here does I/O.

mod bookings;
mod consents;
mod events;
mod experiences;
mod orders;
pub mod read;

use rusqlite::types::Value;
use serde_json::value::RawValue;

use crate::api::types::Timestamp;
use crate::store::{Children, Params, Row, iso};
use read::{Fields, Money};

/// Every stream, in the order runs report them: the one place a new stream is listed.
pub static ALL: [&Stream; 5] = [
    &bookings::STREAM,
    &orders::STREAM,
    &consents::STREAM,
    &events::STREAM,
    &experiences::STREAM,
];

/// A list the job copies, described once, in its own file.
#[derive(Debug)]
pub struct Stream {
    /// The stream's name: its `[streams]` config key, its table, its `sync_state` row, its logs.
    pub name: &'static str,
    /// The list endpoint, relative to `api.base_url`; `{path}/{id}` fetches one item.
    pub path: &'static str,
    /// The OAuth scope its endpoints require (seed 003).
    pub scope: &'static str,
    pub mode: Mode,
    /// Whether it runs when `[streams]` does not name it.
    pub enabled_by_default: bool,
    /// Maps one list item to its row.
    pub parse: fn(&RawValue) -> Result<Item, String>,
    /// Per-item lists fetched by the fan-out for every new or changed item (an order's line
    /// items, transactions and refunds); when there are any, pages are staged, not written.
    pub children: &'static [Child],
}

/// A per-item list: `{parent path}/{id}/{leaf}` answers `{items}` (no paging, §6.13).
#[derive(Debug)]
pub struct Child {
    /// Its table.
    pub table: &'static str,
    pub leaf: &'static str,
    /// Maps one parent's whole list (`table`, parent id, items) to the rows replacing what is
    /// stored; unreadable items go to quarantine.
    pub read: fn(&'static str, &str, &[Box<RawValue>]) -> Children,
}

/// How a stream is walked each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sortable by `updated_at`: a bootstrap crawl once, then only what changed.
    Incremental,
    /// No usable timestamp filter: every run lists everything and confirms what vanished.
    Scan,
}

impl Stream {
    pub fn has_children(&self) -> bool {
        !self.children.is_empty()
    }
}

/// The stream called `name`, if there is one.
pub fn by_name(name: &str) -> Option<&'static Stream> {
    ALL.iter().copied().find(|s| s.name == name)
}

/// Every table the streams write, each stream's before its children's.
pub fn tables() -> Vec<&'static str> {
    ALL.iter()
        .flat_map(|s| std::iter::once(s.name).chain(s.children.iter().map(|c| c.table)))
        .collect()
}

/// A parsed list item.
#[derive(Debug, Clone)]
pub struct Item {
    pub row: Row,
    /// The stored identity (`id`, or a consent's natural key): what removal detection compares.
    pub key: String,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

/// Reads `raw` as an object, naming the item's id (if it has one) in any error.
fn item(raw: &RawValue, read: impl FnOnce(Fields<'_>) -> Result<Item, String>) -> Result<Item, String> {
    let value: serde_json::Value =
        serde_json::from_str(raw.get()).map_err(|e| format!("item: not JSON: {e}"))?;
    let fields = Fields::item(&value)?;
    read(fields).map_err(|e| match fields.str("id") {
        Some(id) => format!("item {id}: {e}"),
        None => format!("item: {e}"),
    })
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn opt_text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, text)
}

fn opt_int(i: Option<i64>) -> Value {
    i.map_or(Value::Null, Value::Integer)
}

fn opt_json(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::Text)
}

fn ts(t: Timestamp) -> Value {
    Value::Text(iso(t))
}

fn opt_ts(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, ts)
}

/// A Money object as its three columns, named by `names` (`:x_minor`, `:x_currency`, `:x_exponent`).
fn money(p: &mut Params, names: [&'static str; 3], m: Money<'_>) {
    p.push((names[0], opt_int(m.value)));
    p.push((names[1], opt_text(m.currency)));
    p.push((names[2], opt_int(m.exponent)));
}

/// The customer union flattened; the contact name is `full_name` or, failing that, `name`.
/// `address_lines` may be absent, null, or hold nulls: each line is read on its own.
fn customer(p: &mut Params, c: Fields<'_>) {
    let address = c.obj("address");
    let lines = address.array("address_lines");
    let line = |n: usize| lines.get(n).and_then(serde_json::Value::as_str);
    p.extend([
        (":customer_type", opt_text(c.str("customer_type"))),
        (":customer_name", opt_text(c.str("full_name").or(c.str("name")))),
        (":customer_company_name", opt_text(c.str("company_name"))),
        (":customer_vat_number", opt_text(c.str("vat_number"))),
        (":customer_email", opt_text(c.str("email"))),
        (":customer_phone", opt_text(c.str("phone"))),
        (":customer_address_line1", opt_text(line(0))),
        (":customer_address_line2", opt_text(line(1))),
        (":customer_city", opt_text(address.str("city"))),
        (":customer_zip_code", opt_text(address.str("zip_code"))),
        (":customer_region", opt_text(address.str("region"))),
        (":customer_country", opt_text(address.str("country"))),
    ]);
}

fn row(table: &'static str, key: Params, mut cols: Params, raw: &RawValue) -> Row {
    cols.push((":raw_json", text(raw.get())));
    let item_key = match key.first() {
        Some((_, Value::Text(k))) => k.clone(),
        _ => String::new(),
    };
    Row {
        table,
        key,
        cols,
        raw_json: raw.get().to_owned(),
        item_key,
    }
}

/// An item that could not be read, as it goes to quarantine.
pub fn quarantined(stream: &'static str, raw: &RawValue, error: String) -> crate::store::Quarantined {
    let id = serde_json::from_str::<serde_json::Value>(raw.get())
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .filter(|id| !id.is_empty());
    crate::store::Quarantined {
        stream,
        key: id.clone().unwrap_or_else(|| read::fingerprint(raw.get())),
        id,
        parent_id: None,
        error,
        raw_json: raw.get().to_owned(),
    }
}
