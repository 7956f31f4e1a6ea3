//! One statement's parameters being bound: which were set, and why a row could not be bound.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use rusqlite::Statement;
use serde::ser;

/// Why a row could not be bound: a field without a parameter, a parameter without a field, or a
/// value of a shape a column cannot hold.
#[derive(Debug)]
pub(crate) struct BindError(pub(crate) String);

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
pub(super) type Slots = Vec<(usize, usize, Option<usize>)>;

thread_local! {
    pub(super) static INDEXES: RefCell<HashMap<usize, Slots>> = RefCell::new(HashMap::new());
}

/// Binds one row to one prepared statement.
pub(crate) struct Binder<'s, 'c> {
    pub(super) stmt: &'s mut Statement<'c>,
    /// Every field must land on a parameter (writes) or may be skipped (lookups).
    pub(super) strict: bool,
    pub(super) bound: Vec<bool>,
    pub(super) slots: Slots,
    /// The next field's position in `slots`.
    pub(super) next: usize,
}

impl<'s, 'c> Binder<'s, 'c> {
    pub(super) fn index(
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

    pub(super) fn put<T: rusqlite::ToSql + ?Sized>(
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
