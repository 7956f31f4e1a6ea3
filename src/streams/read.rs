//! Forgiving reads of API items.
//!
//! The docs mark nothing nullable and leave many nested shapes unsettled (`docs/understory-api.md`
//! `docs/understory-api.md` §2, §6.10–§6.15), and the API adds fields without notice (`docs/understory-api.md` §4, versioning). So an item is read
//! field by field: a key that is absent, `null`, or of a type this job does not expect reads as
//! `None` (a NULL column), and only what a row cannot exist without — its id or key and the
//! timestamps its stream walks by — is required. An item missing one of those is quarantined
//! by the sync, not its page.
//!
//! Items are parsed into [`Node`], a JSON tree that borrows its strings from the page's text
//! and keeps an object's members in a plain list: reading one item into `serde_json::Value`
//! (a map of owned keys, every string copied) was about a sixth of the job's instructions.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::time::Timestamp;

/// One JSON value, borrowing from the text it was parsed from (a string with escapes is the
/// only thing copied). Members keep the order they were sent in; a repeated key reads as its
/// last occurrence, as `serde_json` does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// Parses `text`; the tree borrows from it.
    pub(crate) fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        // Most objects are items of 10–20 members: start there rather than grow from 4.
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(Key(key)) = map.next_key()? {
            members.push((key, map.next_value()?));
        }
        Ok(Node::Object(members))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
}

/// Writes the value back as compact JSON, for `*_json` columns.
impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Int(i) => s.serialize_i64(*i),
            Node::Float(f) => s.serialize_f64(*f),
            Node::Str(v) => s.serialize_str(v),
            Node::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

type Members<'a> = [(Cow<'a, str>, Node<'a>)];

/// One JSON object, read leniently. A missing or non-object value reads as an empty object.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a>(Option<&'a Members<'a>>);

/// A Money object's three parts, each `None` when absent or unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Money<'a> {
    pub(crate) value: Option<i64>,
    pub(crate) currency: Option<&'a str>,
    pub(crate) exponent: Option<i64>,
}

impl<'a> Fields<'a> {
    /// The object `v`, or an empty one when `v` is not an object.
    pub(crate) fn of(v: &'a Node<'a>) -> Self {
        match v {
            Node::Object(m) => Self(Some(m)),
            _ => Self(None),
        }
    }

    /// The item as a whole must be an object; anything else cannot become a row.
    pub(crate) fn item(v: &'a Node<'a>) -> Result<Self, String> {
        match v {
            Node::Object(m) => Ok(Self(Some(m))),
            _ => Err("the item is not a JSON object".to_owned()),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Node<'a>> {
        // Last occurrence wins, as in `serde_json::Value`; items have a few dozen members.
        let (_, v) = self.0?.iter().rev().find(|(k, _)| k == key)?;
        (*v != Node::Null).then_some(v)
    }

    /// The nested object at `key` (empty when absent, null or not an object).
    pub(crate) fn obj(&self, key: &str) -> Fields<'a> {
        self.get(key).map_or(Fields(None), Fields::of)
    }

    pub(crate) fn str(&self, key: &str) -> Option<&'a str> {
        match self.get(key)? {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An owned string, for a row's column.
    pub(crate) fn string(&self, key: &str) -> Option<String> {
        self.str(key).map(str::to_owned)
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Node::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// An integer; a float with no fractional part is accepted (some encoders write `2.0`).
    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        match *self.get(key)? {
            Node::Int(i) => Some(i),
            Node::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            _ => None,
        }
    }

    /// An RFC 3339 timestamp.
    pub(crate) fn ts(&self, key: &str) -> Option<Timestamp> {
        chrono::DateTime::parse_from_rfc3339(self.str(key)?)
            .ok()
            .map(|t| t.to_utc())
    }

    /// The elements of the array at `key` (none when absent or not an array).
    pub(crate) fn array(&self, key: &str) -> &'a [Node<'a>] {
        match self.get(key) {
            Some(Node::Array(items)) => items,
            _ => &[],
        }
    }

    /// The value at `key` as compact JSON text, for `*_json` columns; `None` when absent or null.
    pub(crate) fn json(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| serde_json::to_string(v).ok())
    }

    pub(crate) fn money(&self, key: &str) -> Money<'a> {
        let m = self.obj(key);
        Money {
            value: m.int("value"),
            currency: m.str("currency"),
            exponent: m.int("exponent"),
        }
    }

    /// A string the row cannot exist without.
    pub(crate) fn required_str(&self, key: &str) -> Result<&'a str, String> {
        self.str(key)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("`{key}` is missing or not a string"))
    }

    /// A timestamp the stream walks by.
    pub(crate) fn required_ts(&self, key: &str) -> Result<Timestamp, String> {
        self.ts(key)
            .ok_or_else(|| format!("`{key}` is missing or not an RFC 3339 timestamp"))
    }
}

/// A stable fingerprint of an item that has no id (FNV-1a, 64 bits): its quarantine key.
pub(crate) fn fingerprint(raw: &str) -> String {
    let h = raw.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("sha:{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_null_and_wrongly_typed_all_read_as_none() {
        let text = r#"{"a": null, "b": 3, "c": "x", "d": {"e": null}, "f": [1], "g": 2.0}"#;
        let v = Node::parse(text).unwrap();
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
        let v = Node::parse(r#"{"id": "", "created_at": "yesterday"}"#).unwrap();
        let f = Fields::of(&v);
        assert!(f.required_str("id").unwrap_err().contains("`id`"));
        assert!(f.required_ts("created_at").unwrap_err().contains("`created_at`"));
        assert!(Fields::item(&Node::parse("[1]").unwrap()).is_err());
    }

    #[test]
    fn money_reads_its_parts_separately() {
        let text = r#"{"m": {"value": 2500, "currency": null, "exponent": 2, "extra": true}}"#;
        let v = Node::parse(text).unwrap();
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
    fn strings_borrow_unless_escaped_and_json_keeps_member_order() {
        let text = r#"{"plain": "abc", "esc\u0041pe": "a\nb", "z": 1, "a": [true, 1.5, -2]}"#;
        let v = Node::parse(text).unwrap();
        let Node::Object(members) = &v else {
            panic!("{v:?}")
        };
        assert!(matches!(members[0].1, Node::Str(Cow::Borrowed("abc"))));
        assert_eq!(members[1].0, "escApe");
        assert!(matches!(&members[1].1, Node::Str(Cow::Owned(s)) if s == "a\nb"));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"plain":"abc","escApe":"a\nb","z":1,"a":[true,1.5,-2]}"#
        );
        let repeated = Node::parse(r#"{"k": 1, "k": 2}"#).unwrap();
        assert_eq!(
            Fields::of(&repeated).int("k"),
            Some(2),
            "the last occurrence wins"
        );
        let big = Node::parse("18446744073709551615").unwrap();
        assert!(
            matches!(big, Node::Float(_)),
            "past i64 is a float, as in serde_json"
        );
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        assert_eq!(fingerprint("{}"), fingerprint("{}"));
        assert_ne!(fingerprint("{\"a\":1}"), fingerprint("{\"a\":2}"));
        assert!(fingerprint("x").starts_with("sha:"));
    }
}
