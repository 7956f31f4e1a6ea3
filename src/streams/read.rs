//! Forgiving reads of API items.
//!
//! The docs mark nothing nullable and leave many nested shapes unsettled (`understory-api.md`
//! §2, §6.10–§6.15), and the API adds fields without notice (§4, versioning). So an item is read
//! field by field: a key that is absent, `null`, or of a type this job does not expect reads as
//! `None` (a NULL column), and only what a row cannot exist without — its id or key and the
//! timestamps its stream walks by — is required. An item missing one of those is quarantined
//! by the sync, not its page.

use serde_json::{Map, Value};

use crate::api::types::Timestamp;

/// One JSON object, read leniently. A missing or non-object value reads as an empty object.
#[derive(Clone, Copy)]
pub struct Fields<'a>(Option<&'a Map<String, Value>>);

/// A Money object's three parts, each `None` when absent or unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Money<'a> {
    pub value: Option<i64>,
    pub currency: Option<&'a str>,
    pub exponent: Option<i64>,
}

impl<'a> Fields<'a> {
    /// The object `v`, or an empty one when `v` is not an object.
    pub fn of(v: &'a Value) -> Self {
        Self(v.as_object())
    }

    /// The item as a whole must be an object; anything else cannot become a row.
    pub fn item(v: &'a Value) -> Result<Self, String> {
        v.as_object()
            .map(|m| Self(Some(m)))
            .ok_or_else(|| "the item is not a JSON object".to_owned())
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0?.get(key).filter(|v| !v.is_null())
    }

    /// The nested object at `key` (empty when absent, null or not an object).
    pub fn obj(&self, key: &str) -> Fields<'a> {
        Fields(self.get(key).and_then(Value::as_object))
    }

    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key)?.as_str()
    }

    /// An owned string, for a row's column.
    pub fn string(&self, key: &str) -> Option<String> {
        self.str(key).map(str::to_owned)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// An integer; a float with no fractional part is accepted (some encoders write `2.0`).
    pub fn int(&self, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        v.as_i64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        })
    }

    /// An RFC 3339 timestamp.
    pub fn ts(&self, key: &str) -> Option<Timestamp> {
        chrono::DateTime::parse_from_rfc3339(self.str(key)?)
            .ok()
            .map(|t| t.to_utc())
    }

    /// The elements of the array at `key` (none when absent or not an array).
    pub fn array(&self, key: &str) -> &'a [Value] {
        self.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }

    /// The value at `key` as JSON text, for `*_json` columns; `None` when absent or null.
    pub fn json(&self, key: &str) -> Option<String> {
        self.get(key).map(Value::to_string)
    }

    pub fn money(&self, key: &str) -> Money<'a> {
        let m = self.obj(key);
        Money {
            value: m.int("value"),
            currency: m.str("currency"),
            exponent: m.int("exponent"),
        }
    }

    /// A string the row cannot exist without.
    pub fn required_str(&self, key: &str) -> Result<&'a str, String> {
        self.str(key)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("`{key}` is missing or not a string"))
    }

    /// A timestamp the stream walks by.
    pub fn required_ts(&self, key: &str) -> Result<Timestamp, String> {
        self.ts(key)
            .ok_or_else(|| format!("`{key}` is missing or not an RFC 3339 timestamp"))
    }
}

/// A stable fingerprint of an item that has no id (FNV-1a, 64 bits): its quarantine key.
pub fn fingerprint(raw: &str) -> String {
    let h = raw.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("sha:{h:016x}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn absent_null_and_wrongly_typed_all_read_as_none() {
        let v = json!({"a": null, "b": 3, "c": "x", "d": {"e": null}, "f": [1], "g": 2.0});
        let f = Fields::of(&v);
        assert_eq!(f.str("a"), None);
        assert_eq!(f.str("b"), None, "a number is not a string");
        assert_eq!(f.int("c"), None);
        assert_eq!(f.int("g"), Some(2));
        assert_eq!(f.str("zzz"), None);
        assert_eq!(f.obj("d").str("e"), None);
        assert_eq!(f.obj("c").str("e"), None, "a string is not an object");
        assert_eq!(f.array("f").len(), 1);
        assert!(f.array("d").is_empty());
        assert_eq!(f.json("a"), None);
        assert_eq!(f.json("d").as_deref(), Some(r#"{"e":null}"#));
    }

    #[test]
    fn required_fields_name_themselves() {
        let v = json!({"id": "", "created_at": "yesterday"});
        let f = Fields::of(&v);
        assert!(f.required_str("id").unwrap_err().contains("`id`"));
        assert!(f.required_ts("created_at").unwrap_err().contains("`created_at`"));
        assert!(Fields::item(&json!([1])).is_err());
    }

    #[test]
    fn money_reads_its_parts_separately() {
        let v = json!({"m": {"value": 2500, "currency": null, "exponent": 2, "extra": true}});
        assert_eq!(
            Fields::of(&v).money("m"),
            Money {
                value: Some(2500),
                currency: None,
                exponent: Some(2)
            }
        );
        assert_eq!(Fields::of(&v).money("nope"), Money::default());
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        assert_eq!(fingerprint("{}"), fingerprint("{}"));
        assert_ne!(fingerprint("{\"a\":1}"), fingerprint("{\"a\":2}"));
        assert!(fingerprint("x").starts_with("sha:"));
    }
}
