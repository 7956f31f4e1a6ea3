//! What a stream is: its endpoint, scope and walk mode, and how one of its items becomes a typed
//! row (or an entry in quarantine).

use serde_json::value::RawValue;

use super::read::{self, Fields};
use super::redact;
use crate::store::{Children, Prune, Quarantined, Record, Row};
use crate::time::Timestamp;

/// A list the job copies.
#[derive(Debug)]
pub struct Stream {
    /// The stream's name: its `[streams]` config key, its table, its statements file, its
    /// `sync_state` row, its logs.
    pub name: &'static str,
    /// A list stream's endpoint relative to `api.base_url` (`{path}/{id}` fetches one item); a
    /// per-parent stream's last path segment (`{parent path}/{id}/{path}`).
    pub path: &'static str,
    /// The OAuth scope its endpoint requires (`docs/understory-api.md` §1.2, §3).
    pub scope: &'static str,
    pub(crate) mode: Mode,
    /// Whether it runs when `[streams]` does not name it.
    pub enabled_by_default: bool,
    /// The webhook events that name its items, if Understory sends any: then `run` with a
    /// `[webhooks]` section keeps it fresh between listing syncs (`crate::webhooks`).
    pub(crate) webhook: Option<Webhook>,
    /// Maps one item to its row.
    pub(crate) parse: fn(At<'_>, Fields<'_>) -> Result<Parsed, String>,
}

/// The webhook events of a stream (Understory's *Webhooks* guide; `docs/understory-api.md` §2, "Webhook deliveries"):
/// thin events `{id, type, timestamp, payload}` whose payload names the item by id. Everything the
/// receiver and the applier need to know of a stream's events is here, so a stream that gets
/// events later is this one line in its descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Webhook {
    /// The event types, e.g. `v1.booking.updated`.
    pub(crate) types: &'static [&'static str],
    /// The payload field holding the item's id, e.g. `booking_id`.
    pub(crate) id_field: &'static str,
    /// The types after which the item may be gone: a 404 for its id then marks the row removed
    /// the way a confirmed removal does (a scan stream's rows), rather than an error.
    pub(crate) removing: &'static [&'static str],
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
pub(crate) enum Mode {
    /// Sortable by `updated_at`: a bootstrap crawl once, then only what changed.
    Incremental,
    /// No usable change filter: every run lists everything and confirms what vanished.
    Scan,
    /// A list per item of another stream, fetched by the fan-out for every parent that is new or
    /// changed; each parent's whole list replaces what is stored for it.
    PerParent(PerParent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PerParent {
    pub(crate) parent: &'static Stream,
    /// Answers `{next, items}` with `cursor`/`limit` (else `{items}`, all at once, `docs/understory-api.md` §6.13).
    pub(crate) paged: bool,
    /// How the stored list is replaced by the listed one.
    pub(crate) replace: Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Items have ids: stored ids the list no longer has are deleted.
    ById,
    /// Items have no id: they are keyed by position, and positions past the list's end deleted.
    ByPosition,
}

/// Where an item was listed: a per-parent stream's rows name their parent and position.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub(crate) parent_id: &'a str,
    pub(crate) position: usize,
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
pub(crate) struct Parsed {
    pub(crate) record: Box<dyn Record>,
    /// The stored identity (`id`, a consent's natural key, a position): what removal detection
    /// and per-parent replacement compare.
    pub(crate) key: String,
    pub(crate) created_at: Option<Timestamp>,
    pub(crate) updated_at: Option<Timestamp>,
}

impl Parsed {
    pub(crate) fn new(record: impl Record + 'static, key: impl Into<String>) -> Self {
        Self {
            record: Box::new(record),
            key: key.into(),
            created_at: None,
            updated_at: None,
        }
    }

    /// The timestamps a walk sorts and resumes by.
    pub(crate) fn walked_by(mut self, created_at: Option<Timestamp>, updated_at: Option<Timestamp>) -> Self {
        self.created_at = created_at;
        self.updated_at = updated_at;
        self
    }
}

/// A parsed item, ready for the store.
#[derive(Debug)]
pub struct Item {
    pub row: Row,
    pub(crate) key: String,
    pub(crate) created_at: Option<Timestamp>,
    pub(crate) updated_at: Option<Timestamp>,
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
    pub(crate) fn read_list(&'static self, parent_id: &str, items: &[Box<RawValue>]) -> Children {
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

/// An item that could not be read, as it goes to quarantine.
pub(crate) fn quarantined(stream: &'static str, raw: &RawValue, error: String) -> Quarantined {
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
