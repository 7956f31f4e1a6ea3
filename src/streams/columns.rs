//! Column shapes several streams share: Money and the customer.

use serde::Serialize;

use super::read::{self, Fields};

/// A Money object's columns: `<field>_minor`, `<field>_currency`, `<field>_exponent`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Money {
    pub minor: Option<i64>,
    pub currency: Option<String>,
    pub exponent: Option<i64>,
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
pub struct Customer {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    pub company_name: Option<String>,
    pub vat_number: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub zip_code: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
}

impl Customer {
    pub fn read(c: Fields<'_>) -> Self {
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
