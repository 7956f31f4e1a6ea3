//! Streams: one per Understory list the job copies. A stream knows its endpoint and scope, how
//! it is walked (incremental by `updated_at`, or a full scan), and how an item becomes a row.
//! The sync engine (`crate::sync`) does the walking; nothing here does I/O.

mod bookings;
mod consents;
mod events;
mod experiences;
mod orders;

use rusqlite::types::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::api::types::{Customer, Money, Timestamp};
use crate::store::{Params, Row, Table, iso};

pub use orders::{SUBRESOURCES, children as order_children, subresource_path};

/// A list the job copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Bookings,
    Orders,
    MarketingConsents,
    Events,
    Experiences,
}

/// How a stream is walked each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sortable by `updated_at`: a bootstrap crawl once, then only what changed.
    Incremental,
    /// No usable timestamp filter: every run lists everything and marks what vanished.
    Scan,
}

impl StreamKind {
    pub const ALL: [StreamKind; 5] = [
        Self::Bookings,
        Self::Orders,
        Self::MarketingConsents,
        Self::Events,
        Self::Experiences,
    ];

    /// The stream's name in config, logs, `sync_state` and `sync_runs`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bookings => "bookings",
            Self::Orders => "orders",
            Self::MarketingConsents => "marketing_consents",
            Self::Events => "events",
            Self::Experiences => "experiences",
        }
    }

    /// The OAuth scope its endpoints require (seed 003).
    pub fn scope(self) -> &'static str {
        match self {
            Self::Bookings => "booking.read",
            Self::Orders => "order.read",
            Self::MarketingConsents => "marketing.read",
            Self::Events => "event.read",
            Self::Experiences => "experience.read",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::Bookings => "v1/bookings",
            Self::Orders => "v1/orders",
            Self::MarketingConsents => "v1/marketing-consents",
            Self::Events => "v1/events",
            Self::Experiences => "v1/experiences",
        }
    }

    pub fn mode(self) -> Mode {
        match self {
            Self::Bookings | Self::Orders => Mode::Incremental,
            Self::MarketingConsents | Self::Events | Self::Experiences => Mode::Scan,
        }
    }

    pub fn table(self) -> Table {
        match self {
            Self::Bookings => Table::Bookings,
            Self::Orders => Table::Orders,
            Self::MarketingConsents => Table::MarketingConsents,
            Self::Events => Table::Events,
            Self::Experiences => Table::Experiences,
        }
    }

    /// Maps one list item to its row.
    pub fn parse(self, raw: &RawValue) -> Result<Item, String> {
        match self {
            Self::Bookings => bookings::parse(raw),
            Self::Orders => orders::parse(raw),
            Self::MarketingConsents => consents::parse(raw),
            Self::Events => events::parse(raw),
            Self::Experiences => experiences::parse(raw),
        }
    }
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

/// Deserialises `raw` as `T`, naming the item's id (if any) in the error.
fn typed<T: DeserializeOwned>(raw: &RawValue) -> Result<T, String> {
    serde_json::from_str(raw.get()).map_err(|e| {
        let id = serde_json::from_str::<serde_json::Value>(raw.get())
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned));
        match id {
            Some(id) => format!("item {id}: {e}"),
            None => format!("item: {e}"),
        }
    })
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn opt_text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, text)
}

fn ts(t: Timestamp) -> Value {
    Value::Text(iso(t))
}

fn json<T: Serialize>(v: Option<&T>) -> Value {
    v.and_then(|v| serde_json::to_string(v).ok())
        .map_or(Value::Null, Value::Text)
}

/// A Money object as its three columns, named by `names` (`:x_minor`, `:x_currency`, `:x_exponent`).
fn money(p: &mut Params, names: [&'static str; 3], m: Option<&Money>) {
    p.push((names[0], m.map_or(Value::Null, |m| Value::Integer(m.value))));
    p.push((names[1], opt_text(m.map(|m| m.currency.as_str()))));
    p.push((
        names[2],
        m.map_or(Value::Null, |m| Value::Integer(i64::from(m.exponent))),
    ));
}

/// The customer union flattened; the contact name is `full_name` or, failing that, `name`.
fn customer(p: &mut Params, c: &Customer) {
    let address = c.address.as_ref();
    let line = |n: usize| address.and_then(|a| a.address_lines.get(n)).map(String::as_str);
    p.extend([
        (":customer_type", text(&c.customer_type)),
        (
            ":customer_name",
            opt_text(c.full_name.as_deref().or(c.name.as_deref())),
        ),
        (":customer_company_name", opt_text(c.company_name.as_deref())),
        (":customer_vat_number", opt_text(c.vat_number.as_deref())),
        (":customer_email", opt_text(c.email.as_deref())),
        (":customer_phone", opt_text(c.phone.as_deref())),
        (":customer_address_line1", opt_text(line(0))),
        (":customer_address_line2", opt_text(line(1))),
        (
            ":customer_city",
            opt_text(address.and_then(|a| a.city.as_deref())),
        ),
        (
            ":customer_zip_code",
            opt_text(address.and_then(|a| a.zip_code.as_deref())),
        ),
        (
            ":customer_region",
            opt_text(address.and_then(|a| a.region.as_deref())),
        ),
        (
            ":customer_country",
            opt_text(address.and_then(|a| a.country.as_deref())),
        ),
    ]);
}

fn row(table: Table, key: Params, mut cols: Params, raw: &RawValue) -> Row {
    cols.push((":raw_json", text(raw.get())));
    Row {
        table,
        key,
        cols,
        raw_json: raw.get().to_owned(),
    }
}
