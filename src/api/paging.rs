//! The API's cursor pagination (`docs/understory-api.md` §1.1), and the client's calls that follow it: one page of a
//! list, one item by id, and the whole of one item's per-item list.
//!
//! Which page a stream's walk asks for next is the sync's decision (`sync::walk`); how a list
//! request is spelled, how a cursor loop is told apart from more pages, and how an id becomes a
//! path are the API's protocol, and live here.

use std::collections::HashSet;

use serde_json::value::RawValue;

use super::client::{ApiClient, Stats, shown};
use super::error::Error;
use super::types::Page;
use crate::memory::Held;
use crate::pace::Lane;
use crate::time::{Timestamp, iso};

/// The order a list is walked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// As the API lists it, with no sort: a scan.
    Listed,
    /// `sort=+created_at`, from `from` when given: a first load's crawl, which can go on from
    /// the position it reached when its cursor went stale.
    OldestCreatedFirst { from: Option<Timestamp> },
    /// `sort=-updated_at`: an incremental pass, newest change first.
    NewestUpdatedFirst,
}

/// The longest `next` cursor sent back: 8 KiB. Understory's cursors are short tokens; a URL
/// carrying a longer one is refused by common servers and proxies (often at 8 KiB for the whole
/// request line), and one past 64 KiB cannot even be written as an HTTP URI. A longer cursor
/// ends the stream with one error line instead of failing the same request on every run.
pub const MAX_CURSOR_BYTES: usize = 8 * 1024;

/// One list request: how many items, in which order, from which cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListQuery {
    /// `limit`; `None` for a list the API answers whole.
    pub(crate) limit: Option<u32>,
    pub(crate) order: Order,
    /// `cursor`: the previous page's `next`; `None` for the first page.
    pub(crate) cursor: Option<String>,
}

impl ListQuery {
    /// The newest change the list holds: one item, newest `updated_at` first.
    pub(crate) fn newest() -> Self {
        Self {
            limit: Some(1),
            order: Order::NewestUpdatedFirst,
            cursor: None,
        }
    }

    /// The query string's parameters, in a fixed order.
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::with_capacity(4);
        if let Some(limit) = self.limit {
            q.push(("limit", limit.to_string()));
        }
        match self.order {
            Order::Listed => {}
            // reqwest escapes the `+` as %2B, as the docs require.
            Order::OldestCreatedFirst { from } => {
                q.push(("sort", "+created_at".to_owned()));
                if let Some(from) = from {
                    q.push(("from", iso(from)));
                }
            }
            Order::NewestUpdatedFirst => q.push(("sort", "-updated_at".to_owned())),
        }
        if let Some(c) = &self.cursor {
            q.push(("cursor", c.clone()));
        }
        q
    }
}

/// The cursors one walk of a list has followed, hashed (a cursor is the server's text, of any
/// length): a `next` among them is a loop, not more pages. A collision only ends a walk early,
/// with an error line, and the next run starts it again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Followed(HashSet<u64>);

impl Followed {
    /// Notes `cursor` as followed; false when it already was.
    pub(crate) fn insert(&mut self, cursor: &str) -> bool {
        self.0.insert(fingerprint(cursor))
    }

    pub(crate) fn contains(&self, cursor: &str) -> bool {
        self.0.contains(&fingerprint(cursor))
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

fn fingerprint(cursor: &str) -> u64 {
    use std::hash::{BuildHasher as _, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(cursor)
}

/// The path of one item of the list at `list` (`v1/orders/{id}`), or of one of its per-item
/// lists (`v1/orders/{id}/line-items`). The id is the API's data, not ours: it is
/// percent-encoded as one path segment, so `/`, `?`, `#`, `%` and spaces in it stay inside it
/// and the bearer token goes to no other path. `None` for an id that no encoding keeps in its
/// place: empty, `.` or `..` (a URL resolves those segments away).
pub(crate) fn item_path(list: &str, id: &str, sub: Option<&str>) -> Option<String> {
    if matches!(id, "" | "." | "..") {
        return None;
    }
    let segment: String = id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    Some(match sub {
        Some(sub) => format!("{list}/{segment}/{sub}"),
        None => format!("{list}/{segment}"),
    })
}

/// How hard to ask for one item by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tries {
    /// With the usual retries, in the walk's lane: what the run's result depends on.
    Retried,
    /// One try, behind the walks: an item that can wait for a later run (a quarantined one),
    /// so a failing item spends neither the run's retry budget nor its time.
    Once,
}

/// What asking for one item by id found.
#[derive(Debug)]
pub(crate) enum ById {
    Found(Box<RawValue>),
    /// 404: the API no longer has it.
    Gone,
    /// An id no URL can address (`.`, `..`, empty): nothing was asked.
    Unaddressable,
}

/// Items one item's per-item list may hold: an experience has a few dozen ticket variants, an
/// order a few line items; this is hundreds of times that. The list is held whole until it is
/// committed with its parent, so one that pages on and on must not take the memory. Its bytes
/// are bounded too, by `sync.max_in_flight_bytes`: 20,000 items of 150 KB would be 3 GB.
pub(crate) const MAX_LIST_ITEMS: usize = 20_000;

impl ApiClient {
    /// One page of the list at `path`, its body counted in `held` (see `memory`).
    pub(crate) async fn page(
        &self,
        lane: Lane,
        stats: &Stats,
        path: &str,
        query: &ListQuery,
        held: &Held,
    ) -> Result<Page<Box<RawValue>>, Error> {
        Ok(self.page_sized(lane, stats, path, query, held).await?.0)
    }

    /// `page`, with the length of its body: the one place a cursor is checked against
    /// [`MAX_CURSOR_BYTES`] before it is sent, for list walks and per-item lists alike.
    async fn page_sized(
        &self,
        lane: Lane,
        stats: &Stats,
        path: &str,
        query: &ListQuery,
        held: &Held,
    ) -> Result<(Page<Box<RawValue>>, usize), Error> {
        if let Some(cursor) = query.cursor.as_deref().filter(|c| c.len() > MAX_CURSOR_BYTES) {
            return Err(Error::CursorTooLong {
                path: shown(path),
                len: cursor.len(),
                max: MAX_CURSOR_BYTES,
            });
        }
        self.get_held(lane, stats, path, &query.params(), held).await
    }

    /// The item `id` of the list at `list` (`{list}/{id}`, the id escaped as one path segment).
    pub(crate) async fn by_id(
        &self,
        stats: &Stats,
        list: &str,
        id: &str,
        tries: Tries,
    ) -> Result<ById, Error> {
        let Some(path) = item_path(list, id, None) else {
            return Ok(ById::Unaddressable);
        };
        let got = match tries {
            Tries::Retried => self.get_in(Lane::Walk, stats, &path, &[]).await,
            Tries::Once => self.get_once(Lane::FanOut, stats, &path, &[]).await,
        };
        match got {
            Ok(raw) => Ok(ById::Found(raw)),
            Err(e) if e.is_not_found() => Ok(ById::Gone),
            Err(e) => Err(e),
        }
    }

    /// The whole per-item list `sub` of the item `id` of `list` (`{list}/{id}/{sub}`), in the
    /// fan-out's lane. A list that pages (`page_size` given) is followed to its end at once, so
    /// its cursors cannot go stale; one the API answers whole takes no query. Its bodies are
    /// counted in `held` until the list is committed, and a list whose bodies, with those of
    /// the item's other lists counted in `held`, add up past `sync.max_in_flight_bytes` is
    /// refused, as one past `MAX_LIST_ITEMS` is.
    pub(crate) async fn per_item_list(
        &self,
        stats: &Stats,
        (list, id, sub): (&str, &str, &str),
        page_size: Option<u32>,
        held: &Held,
    ) -> Result<Vec<Box<RawValue>>, Error> {
        let path = item_path(list, id, Some(sub)).ok_or_else(|| Error::Unaddressable {
            list: list.to_owned(),
        })?;
        let mut query = ListQuery {
            limit: page_size,
            order: Order::Listed,
            cursor: None,
        };
        let mut items = Vec::new();
        let mut followed = Followed::default();
        let mut bytes = 0usize;
        loop {
            let (page, read) = self.page_sized(Lane::FanOut, stats, &path, &query, held).await?;
            // The parent's lists are held together until they are committed: their sum is what
            // is bounded (`held` counts them all), not each list alone.
            bytes = bytes.saturating_add(read);
            if bytes.max(held.bytes()) > self.max_list_bytes {
                return Err(Error::ListTooBig {
                    path: shown(&path),
                    max: self.max_list_bytes,
                });
            }
            items.extend(page.items);
            if items.len() > MAX_LIST_ITEMS {
                return Err(Error::ListTooLong {
                    path: shown(&path),
                    max: MAX_LIST_ITEMS,
                });
            }
            match page.next.filter(|n| !n.is_empty()) {
                Some(next) if page_size.is_some() => {
                    if !followed.insert(&next) {
                        return Err(Error::Looping { path: shown(&path) });
                    }
                    query.cursor = Some(next);
                }
                _ => return Ok(items),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_spells_each_order_as_the_docs_do() {
        let from = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let q = ListQuery {
            limit: Some(100),
            order: Order::OldestCreatedFirst { from: Some(from) },
            cursor: Some("c 1".into()),
        };
        assert_eq!(
            q.params(),
            [
                ("limit", "100".to_owned()),
                ("sort", "+created_at".to_owned()),
                ("from", "2026-03-01T00:00:00.000Z".to_owned()),
                ("cursor", "c 1".to_owned()),
            ]
        );
        assert_eq!(
            ListQuery::newest().params(),
            [("limit", "1".to_owned()), ("sort", "-updated_at".to_owned())]
        );
        let whole = ListQuery {
            limit: None,
            order: Order::Listed,
            cursor: None,
        };
        assert!(whole.params().is_empty(), "a list answered whole takes no query");
    }

    #[test]
    fn a_cursor_followed_twice_is_a_loop() {
        let mut f = Followed::default();
        assert!(f.insert("a"));
        assert!(f.insert("b"));
        assert!(!f.insert("a"));
        assert!(f.contains("b"));
        f.clear();
        assert!(!f.contains("a"));
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn an_id_is_one_escaped_segment_wherever_it_points() {
        assert_eq!(
            item_path("v1/orders", "../../x?y=1#", Some("line-items")).as_deref(),
            Some("v1/orders/..%2F..%2Fx%3Fy%3D1%23/line-items")
        );
        assert_eq!(
            item_path("v1/events", "a b%c", None).as_deref(),
            Some("v1/events/a%20b%25c")
        );
        assert_eq!(
            item_path("v1/events", "ok-ID_1.2~", None).as_deref(),
            Some("v1/events/ok-ID_1.2~")
        );
        for bad in ["", ".", ".."] {
            assert_eq!(item_path("v1/events", bad, None), None, "{bad:?}");
        }
        // What the URL becomes: the escapes survive joining onto the base.
        let base = url::Url::parse("https://api.understory.io/").unwrap();
        let url = base
            .join(&item_path("v1/orders", "../x", Some("refunds")).unwrap())
            .unwrap();
        assert_eq!(url.path(), "/v1/orders/..%2Fx/refunds");
    }
}
