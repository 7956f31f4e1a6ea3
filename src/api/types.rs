//! The envelopes the client parses: list pages, sub-resource lists, error bodies, `/v1/me`.
//!
//! Items themselves are not typed here: `crate::streams::read` reads them field by field, so an
//! unexpected shape makes a column NULL instead of failing a page. The sandbox renders its own
//! JSON and shares none of this, so it can send what the job cannot read.

use serde::{Deserialize, Serialize};

/// The envelope of every paged list: the end is `next` empty **or absent** (`docs/understory-api.md` §1.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<String>,
    #[serde(
        deserialize_with = "at_most_max_page_items",
        bound(deserialize = "T: Deserialize<'de>")
    )]
    pub(crate) items: Vec<T>,
}

/// The most items one page may hold: fifty times the largest page the docs allow (100). A
/// page a little longer than asked for is stored (the docs are vague on limits); one of many
/// thousands of small items would be parsed into memory whole, so it is refused while it is
/// read, before the rest of it is.
pub(crate) const MAX_PAGE_ITEMS: usize = 5_000;

fn at_most_max_page_items<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a list of at most {MAX_PAGE_ITEMS} items")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1_024));
            while let Some(item) = seq.next_element()? {
                if items.len() == MAX_PAGE_ITEMS {
                    return Err(serde::de::Error::custom(format!(
                        "the page holds more than {MAX_PAGE_ITEMS} items (fifty times the largest documented page)"
                    )));
                }
                items.push(item);
            }
            Ok(items)
        }
    }
    d.deserialize_seq(Bounded(std::marker::PhantomData))
}

/// The error body of every 400–599 answer from the resource API (`docs/understory-api.md` §4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ApiErrorBody {
    pub(crate) code: String,
    pub(crate) message: String,
}

/// `GET /v1/me`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub company_id: String,
    pub company_name: String,
    pub(crate) user_id: String,
    pub(crate) email: String,
}
