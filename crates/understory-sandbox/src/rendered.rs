//! Top-level list items as JSON text, rendered once per state of the world.
//!
//! Building an item as a `serde_json::Value` tree, writing it out and dropping it was about 90 %
//! of the sandbox's CPU per row (callgrind, 100-row booking pages), so the sandbox — which shares
//! the machine's cores with the job it serves — set the pace of every benchmark. An item is now
//! rendered the first time a page holds it and its text reused until the world next changes;
//! [`super::State`] clears the cache under the world's write lock, so no page ever mixes states.

use crate::poison::Unpoisoned as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;

/// Past this many bytes of text, items are rendered every time rather than kept: the cache must
/// not make a very large sandbox run out of memory (a million bookings is about 1.2 GiB).
const MAX_BYTES: usize = 2 << 30;

/// (stream, index, language).
type Key = (&'static str, usize, &'static str);

#[derive(Default)]
pub struct Rendered {
    items: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    text: HashMap<Key, Arc<RawValue>>,
    bytes: usize,
}

impl Rendered {
    /// Item `index` of the list of `stream` in language `lang`, from the cache or by `render`.
    pub fn get(
        &self,
        stream: &'static str,
        index: usize,
        lang: &'static str,
        render: impl FnOnce() -> serde_json::Value,
    ) -> Arc<RawValue> {
        let key = (stream, index, lang);
        if let Some(text) = self.lock().text.get(&key) {
            return Arc::clone(text);
        }
        let text: Arc<RawValue> = serde_json::value::to_raw_value(&render())
            .expect("a JSON value always serialises")
            .into();
        let mut cache = self.lock();
        if cache.bytes < MAX_BYTES {
            cache.bytes += text.get().len();
            cache.text.insert(key, Arc::clone(&text));
        }
        text
    }

    /// Forgets every item: the world changed.
    pub fn clear(&self) {
        *self.lock() = Cache::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.items.locked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_rendered_once_until_cleared() {
        let cache = Rendered::default();
        let mut renders = 0;
        for _ in 0..3 {
            let text = cache.get("bookings", 7, "en", || {
                renders += 1;
                serde_json::json!({"id": "b7"})
            });
            assert_eq!(text.get(), r#"{"id":"b7"}"#);
        }
        assert_eq!(renders, 1);
        cache.get("orders", 7, "en", || serde_json::json!({"id": "o7"}));
        cache.get("experiences", 7, "da", || serde_json::json!({"id": "x7"}));
        assert_eq!(cache.lock().text.len(), 3, "keys differ by stream and language");
        cache.clear();
        cache.get("bookings", 7, "en", || {
            renders += 1;
            serde_json::json!({"id": "b7", "v": 2})
        });
        assert_eq!(renders, 2, "a cleared cache renders again");
    }
}
