//! Typed rows to SQL parameters: the one place that knows how a row's fields become a
//! statement's named parameters.
//!
//! A stream describes a row as a plain `#[derive(Serialize)]` struct whose field names are its
//! table's column names. A field binds the parameter `:` + its name; the fields of a nested
//! struct bind with the outer field's name as a prefix (`amount: Money { minor, .. }` binds
//! `:amount_minor`), which is how Money and the customer union become their columns. Nothing
//! outside `store` spells a parameter name, so renaming a column is a change to the row struct
//! and its SQL file only.
//!
//! Binding is checked both ways: a field a write has no parameter for, and a parameter no
//! field bound, are errors naming both sides (so a typo fails the first test that writes a row,
//! rather than silently storing NULL). Lookups bind leniently: only the key fields they use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use chrono::SecondsFormat;
use rusqlite::Statement;
use serde::Serialize;
use serde::ser::{self, Impossible};

use crate::api::types::Timestamp;

/// A row a stream produced: anything serialisable as a struct of columns.
pub trait Record: Send + Sync + fmt::Debug {
    fn bind_to(&self, b: &mut Binder<'_, '_>) -> Result<(), BindError>;
}

impl<T: Serialize + Send + Sync + fmt::Debug> Record for T {
    fn bind_to(&self, b: &mut Binder<'_, '_>) -> Result<(), BindError> {
        self.serialize(Fields { b, prefix: None })
    }
}

/// A timestamp column: stored as fixed-width UTC with milliseconds, so text order is time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ts(pub Timestamp);

impl Serialize for Ts {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

/// Why a row could not be bound: a field without a parameter, a parameter without a field, or a
/// value of a shape a column cannot hold.
#[derive(Debug)]
pub struct BindError(pub String);

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BindError {}

impl ser::Error for BindError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

impl From<BindError> for rusqlite::Error {
    fn from(e: BindError) -> Self {
        rusqlite::Error::ToSqlConversionFailure(Box::new(e))
    }
}

/// Per statement text (by address: statements are `&'static`, embedded at compile time, so an
/// address names one text for the life of the process): each field's parameter index, in the
/// order the row type serialises its fields, which is fixed. A field is recognised by the
/// address of its name (the derive's literal), so binding a row costs no hashing or string
/// comparison per field; anything unexpected falls back to looking the name up.
type Slots = Vec<(usize, usize, Option<usize>)>;

thread_local! {
    static INDEXES: RefCell<HashMap<usize, Slots>> = RefCell::new(HashMap::new());
}

/// Binds one row to one prepared statement.
pub struct Binder<'s, 'c> {
    stmt: &'s mut Statement<'c>,
    /// Every field must land on a parameter (writes) or may be skipped (lookups).
    strict: bool,
    bound: Vec<bool>,
    slots: Slots,
    /// The next field's position in `slots`.
    next: usize,
}

impl<'s, 'c> Binder<'s, 'c> {
    fn index(
        &mut self,
        prefix: Option<&'static str>,
        field: &'static str,
    ) -> Result<Option<usize>, BindError> {
        let key = (prefix.map_or(0, |p| p.as_ptr() as usize), field.as_ptr() as usize);
        let slot = self.next;
        self.next += 1;
        let index = match self.slots.get(slot) {
            Some(&(p, f, i)) if (p, f) == key => i,
            _ => {
                let name = match prefix {
                    Some(p) => format!(":{p}_{field}"),
                    None => format!(":{field}"),
                };
                let i = self
                    .stmt
                    .parameter_index(&name)
                    .map_err(|e| BindError(e.to_string()))?;
                let entry = (key.0, key.1, i);
                match self.slots.get_mut(slot) {
                    Some(s) => *s = entry,
                    None => self.slots.push(entry),
                }
                i
            }
        };
        if index.is_none() && self.strict {
            return Err(BindError(format!(
                "the row's field `{}{field}` has no parameter in the statement",
                prefix.map(|p| format!("{p}_")).unwrap_or_default()
            )));
        }
        Ok(index)
    }

    fn put<T: rusqlite::ToSql + ?Sized>(
        &mut self,
        prefix: Option<&'static str>,
        field: &'static str,
        value: &T,
    ) -> Result<(), BindError> {
        if let Some(i) = self.index(prefix, field)? {
            self.stmt
                .raw_bind_parameter(i, value)
                .map_err(|e| BindError(e.to_string()))?;
            self.bound[i] = true;
        }
        Ok(())
    }
}

/// Binds `record` and then `extra` (store-owned parameters such as `:raw_json`, `:now`) to
/// `stmt`, ready for `raw_execute` or `raw_query`. With `strict`, every field and every
/// parameter must meet.
pub fn bind(
    stmt: &mut Statement<'_>,
    sql: &'static str,
    record: &dyn Record,
    extra: &[(&'static str, &dyn rusqlite::ToSql)],
    strict: bool,
) -> rusqlite::Result<()> {
    stmt.clear_bindings();
    let count = stmt.parameter_count();
    let key = sql.as_ptr() as usize;
    let slots = INDEXES.with(|c| c.borrow_mut().remove(&key)).unwrap_or_default();
    let mut b = Binder {
        stmt,
        strict,
        bound: vec![false; count + 1],
        slots,
        next: 0,
    };
    let result = bind_all(&mut b, record, extra);
    let Binder {
        stmt, bound, slots, ..
    } = b;
    INDEXES.with(|c| c.borrow_mut().insert(key, slots));
    result?;
    if strict && let Some(i) = (1..=count).find(|&i| !bound[i]) {
        let name = stmt.parameter_name(i).unwrap_or("?").to_owned();
        return Err(BindError(format!(
            "no field of the row binds the statement's parameter {name}"
        ))
        .into());
    }
    Ok(())
}

fn bind_all(
    b: &mut Binder<'_, '_>,
    record: &dyn Record,
    extra: &[(&'static str, &dyn rusqlite::ToSql)],
) -> Result<(), BindError> {
    record.bind_to(b)?;
    for (name, value) in extra {
        let name = name.trim_start_matches(':');
        // Extras are the store's own; a statement that does not use one simply has no slot.
        let strict = std::mem::replace(&mut b.strict, false);
        let r = b.put(None, name, *value);
        b.strict = strict;
        r?;
    }
    Ok(())
}

/// The struct level: each field binds, or (a nested struct) binds its own fields prefixed.
struct Fields<'a, 's, 'c> {
    b: &'a mut Binder<'s, 'c>,
    prefix: Option<&'static str>,
}

fn not_a_row<T>() -> Result<T, BindError> {
    Err(BindError("a row must be a struct of columns".into()))
}

impl<'a, 's, 'c> ser::SerializeStruct for Fields<'a, 's, 'c> {
    type Ok = ();
    type Error = BindError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BindError> {
        value.serialize(Column {
            b: self.b,
            prefix: self.prefix,
            field: key,
        })
    }

    fn end(self) -> Result<(), BindError> {
        Ok(())
    }
}

macro_rules! refuse {
    ($($name:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ret, BindError> { not_a_row() })*
    };
}

impl<'a, 's, 'c> ser::Serializer for Fields<'a, 's, 'c> {
    type Ok = ();
    type Error = BindError;
    type SerializeSeq = Impossible<(), BindError>;
    type SerializeTuple = Impossible<(), BindError>;
    type SerializeTupleStruct = Impossible<(), BindError>;
    type SerializeTupleVariant = Impossible<(), BindError>;
    type SerializeMap = Impossible<(), BindError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), BindError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, BindError> {
        Ok(self)
    }

    refuse! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), BindError> {
        not_a_row()
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), BindError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), BindError> {
        not_a_row()
    }
}

/// One field's value: a scalar binds its parameter; `None` binds NULL; a struct nests (once).
struct Column<'a, 's, 'c> {
    b: &'a mut Binder<'s, 'c>,
    prefix: Option<&'static str>,
    field: &'static str,
}

impl<'a, 's, 'c> Column<'a, 's, 'c> {
    fn put<T: rusqlite::ToSql + ?Sized>(self, v: &T) -> Result<(), BindError> {
        self.b.put(self.prefix, self.field, v)
    }
    fn shape(&self, what: &str) -> BindError {
        BindError(format!("field `{}`: a column cannot hold {what}", self.field))
    }
}

impl<'a, 's, 'c> ser::Serializer for Column<'a, 's, 'c> {
    type Ok = ();
    type Error = BindError;
    type SerializeSeq = Impossible<(), BindError>;
    type SerializeTuple = Impossible<(), BindError>;
    type SerializeTupleStruct = Impossible<(), BindError>;
    type SerializeTupleVariant = Impossible<(), BindError>;
    type SerializeMap = Impossible<(), BindError>;
    type SerializeStruct = Fields<'a, 's, 'c>;
    type SerializeStructVariant = Impossible<(), BindError>;

    fn serialize_bool(self, v: bool) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_i8(self, v: i8) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), BindError> {
        self.put(&v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), BindError> {
        let v = i64::try_from(v).map_err(|_| self.shape("an integer above i64::MAX"))?;
        self.put(&v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), BindError> {
        self.put(&f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), BindError> {
        self.put(&v)
    }
    fn serialize_char(self, v: char) -> Result<(), BindError> {
        self.put(v.encode_utf8(&mut [0; 4]) as &str)
    }
    fn serialize_str(self, v: &str) -> Result<(), BindError> {
        self.put(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), BindError> {
        self.put(v)
    }
    fn serialize_none(self) -> Result<(), BindError> {
        self.put(&rusqlite::types::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), BindError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), BindError> {
        self.put(&rusqlite::types::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), BindError> {
        self.put(&rusqlite::types::Null)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), BindError> {
        self.put(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), BindError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), BindError> {
        Err(self.shape("an enum with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, BindError> {
        Err(self.shape("a list (keep it as JSON text)"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, BindError> {
        Err(self.shape("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, BindError> {
        Err(self.shape("a tuple"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, BindError> {
        Err(self.shape("an enum with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, BindError> {
        Err(self.shape("a map (keep it as JSON text)"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, BindError> {
        if self.prefix.is_some() {
            return Err(self.shape("a struct nested two deep"));
        }
        Ok(Fields {
            b: self.b,
            prefix: Some(self.field),
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, BindError> {
        Err(self.shape("an enum with data"))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    #[derive(Debug, Serialize)]
    struct Money {
        minor: Option<i64>,
        currency: Option<String>,
    }

    #[derive(Debug, Serialize)]
    struct Row {
        id: String,
        paid: bool,
        amount: Money,
        note: Option<String>,
    }

    const SQL: &str = "INSERT INTO t (id, paid, amount_minor, amount_currency, note, raw) \
                       VALUES (:id, :paid, :amount_minor, :amount_currency, :note, :raw_json)";

    fn table() -> Connection {
        #[allow(clippy::disallowed_methods)] // a scratch in-memory database for the binder alone
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (id, paid, amount_minor, amount_currency, note, raw)")
            .unwrap();
        c
    }

    fn row() -> Row {
        Row {
            id: "a".into(),
            paid: true,
            amount: Money {
                minor: Some(2500),
                currency: None,
            },
            note: None,
        }
    }

    #[test]
    fn fields_nested_fields_and_extras_bind_by_name() {
        let c = table();
        let mut stmt = c.prepare(SQL).unwrap();
        bind(&mut stmt, SQL, &row(), &[(":raw_json", &"{}")], true).unwrap();
        stmt.raw_execute().unwrap();
        let got: (String, i64, i64, Option<String>, Option<String>, String) = c
            .query_row("SELECT * FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .unwrap();
        assert_eq!(got, ("a".into(), 1, 2500, None, None, "{}".into()));
    }

    #[test]
    fn a_field_without_a_parameter_and_a_parameter_without_a_field_are_errors() {
        let c = table();
        let short = "INSERT INTO t (id, paid, amount_minor, amount_currency, raw) \
                     VALUES (:id, :paid, :amount_minor, :amount_currency, :raw_json)";
        let mut stmt = c.prepare(short).unwrap();
        let e = bind(&mut stmt, short, &row(), &[(":raw_json", &"{}")], true).unwrap_err();
        assert!(e.to_string().contains("`note`"), "{e}");

        let mut stmt = c.prepare(SQL).unwrap();
        let e = bind(&mut stmt, SQL, &row(), &[], true).unwrap_err();
        assert!(e.to_string().contains(":raw_json"), "{e}");

        // A lookup binds only what it uses.
        let lookup = "SELECT raw FROM t WHERE id = :id";
        let mut stmt = c.prepare(lookup).unwrap();
        bind(&mut stmt, lookup, &row(), &[], false).unwrap();
    }

    #[test]
    fn timestamps_are_fixed_width_utc_milliseconds() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05+01:00")
            .unwrap()
            .to_utc();
        assert_eq!(
            serde_json::to_string(&Ts(t)).unwrap(),
            "\"2026-01-02T02:04:05.000Z\""
        );
    }
}
