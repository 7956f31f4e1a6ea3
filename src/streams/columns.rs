//! Column shapes several streams share: Money and the customer.

use serde::Serialize;

use super::read::{self, Fields};

/// A Money object's columns: `<field>_minor`, `<field>_currency`, `<field>_exponent`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Money {
    pub(crate) minor: Option<i64>,
    pub(crate) currency: Option<String>,
    pub(crate) exponent: Option<i64>,
}

impl From<read::Money<'_>> for Money {
    fn from(m: read::Money<'_>) -> Self {
        Self {
            minor: m.value,
            currency: m.currency.map(str::to_owned),
            exponent: m.exponent,
        }
    }
}

/// The customer union flattened into `customer_*` columns; the contact name is `full_name` or,
/// failing that, `name`. `address_lines` may be absent, null, or hold nulls: each line is read
/// on its own.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Customer {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) company_name: Option<String>,
    pub(crate) vat_number: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) address_line1: Option<String>,
    pub(crate) address_line2: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) zip_code: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) country: Option<String>,
}

impl Customer {
    pub(crate) fn read(c: Fields<'_>) -> Self {
        let address = c.obj("address");
        let lines = address.array("address_lines");
        let line = |n: usize| lines.get(n).and_then(read::Node::as_str).map(str::to_owned);
        Self {
            kind: c.string("customer_type"),
            name: c.string("full_name").or_else(|| c.string("name")),
            company_name: c.string("company_name"),
            vat_number: c.string("vat_number"),
            email: c.string("email"),
            phone: c.string("phone"),
            address_line1: line(0),
            address_line2: line(1),
            city: address.string("city"),
            zip_code: address.string("zip_code"),
            region: address.string("region"),
            country: address.string("country"),
        }
    }
}
