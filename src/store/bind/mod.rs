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

use std::fmt;

use rusqlite::Statement;
use serde::Serialize;
use serde::ser;

use crate::time::Timestamp;

mod binder;
mod serialize;

use binder::{BindError, Binder, INDEXES};
use serialize::Fields;

/// A row a stream produced: anything serialisable as a struct of columns.
pub(crate) trait Record: Send + Sync + fmt::Debug {
    fn bind_to(&self, b: &mut Binder<'_, '_>) -> Result<(), BindError>;
}

impl<T: Serialize + Send + Sync + fmt::Debug> Record for T {
    fn bind_to(&self, b: &mut Binder<'_, '_>) -> Result<(), BindError> {
        self.serialize(Fields { b, prefix: None })
    }
}

/// A timestamp column: stored as fixed-width UTC with milliseconds, so text order is time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ts(pub(crate) Timestamp);

impl Serialize for Ts {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::iso(self.0))
    }
}

/// Binds `record` and then `extra` (store-owned parameters such as `:raw_json`, `:now`) to
/// `stmt`, ready for `raw_execute` or `raw_query`. With `strict`, every field and every
/// parameter must meet.
pub(crate) fn bind(
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
